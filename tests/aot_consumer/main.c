/* main.c - an example program using a model compiled ahead of time (`kiln compile ... --name
 * model`): reads each input from a tensor file, runs the model, writes each output.
 * usage: consumer [--weights FILE] INPUT_0.pb ... OUTPUT_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int fail(const char *what) {
  fprintf(stderr, "consumer: %s: %s\n", what, kn_aot_last_error());
  return 1;
}

/* Reads input i from path and checks it against what the model was compiled for. */
static int read_input(const KnAotInfo *info, int i, const char *path, KnAotTensor *t) {
  if (kn_aot_read_tensor(path, t) != KN_AOT_OK) return fail(path);
  const KnAotTensorInfo *want = &info->inputs[i];
  if (t->dtype != want->dtype || t->nbytes != (size_t)want->nbytes) {
    fprintf(stderr, "consumer: %s: input %s wants %s with %lld bytes\n", path, want->name,
            kn_aot_dtype_name(want->dtype), (long long)want->nbytes);
    return 1;
  }
  return 0;
}

static int write_outputs(const KnAotInfo *info, void **outputs, const char *dir) {
  for (int i = 0; i < info->n_outputs; i++) {
    const KnAotTensorInfo *o = &info->outputs[i];
    char path[4096];
    snprintf(path, sizeof path, "%s/output_%d.pb", dir, i);
    if (kn_aot_write_tensor(path, o->name, o->dtype, o->rank, o->dims, outputs[i]) != KN_AOT_OK) return fail(path);
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *weights = NULL;
  int first = 1;
  if (argc > 2 && strcmp(argv[1], "--weights") == 0) weights = argv[2], first = 3;
  const KnAotInfo *info = model_info();
  if (argc - first != info->n_inputs + 1) {
    fprintf(stderr, "usage: %s [--weights FILE] INPUT.pb x%d OUTPUT_DIR\n", argv[0], info->n_inputs);
    return 2;
  }
  KnAotModel *m = NULL;
  if (model_create(&m, weights) != KN_AOT_OK) return fail("create");
  KnAotTensor in[MODEL_NUM_INPUTS] = {0};
  const void *inputs[MODEL_NUM_INPUTS];
  void *outputs[MODEL_NUM_OUTPUTS] = {0};
  int rc = 0;
  for (int i = 0; i < info->n_inputs && rc == 0; i++) {
    rc = read_input(info, i, argv[first + i], &in[i]);
    inputs[i] = in[i].data;
  }
  for (int i = 0; i < info->n_outputs && rc == 0; i++)
    if (!(outputs[i] = malloc(info->outputs[i].nbytes ? (size_t)info->outputs[i].nbytes : 1))) rc = 1;
  if (rc == 0 && model_run(m, inputs, outputs) != KN_AOT_OK) rc = fail("run");
  if (rc == 0) rc = write_outputs(info, outputs, argv[argc - 1]);
  for (int i = 0; i < info->n_inputs; i++) kn_aot_tensor_free(&in[i]);
  for (int i = 0; i < info->n_outputs; i++) free(outputs[i]);
  model_destroy(m);
  return rc;
}
