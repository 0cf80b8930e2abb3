/* cli_outputs.c - output paths must not name an input (the model, its external data or weights
 * file) or each other: `kiln compile m.onnx -o m.o --header m.onnx` would otherwise replace the
 * model with its own header. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/cli.h"

#define MAX_INPUT_FILES 256

typedef struct InputFile {
  const char *path;
  dev_t dev;
  ino_t ino;
} InputFile;

static void add_input(InputFile *files, int *n, const char *path) {
  struct stat st;
  if (*n >= MAX_INPUT_FILES || !path || stat(path, &st) != 0) return;
  for (int i = 0; i < *n; i++)
    if (files[i].dev == st.st_dev && files[i].ino == st.st_ino) return;
  files[(*n)++] = (InputFile){path, st.st_dev, st.st_ino};
}

/* The model file and every file its tensors were read from (as given, and relative to the
 * model's folder: ONNX locations are relative, safetensors paths are as opened). */
static int input_files(const KnModel *m, const char *model_path, KnArena *a, InputFile *files) {
  int n = 0;
  add_input(files, &n, model_path);
  const KnGraph *g = m->graph;
  for (int i = 0; i < g->n_inits; i++) {
    const char *loc = g->inits[i]->init ? g->inits[i]->init->location : NULL;
    if (!loc) continue;
    add_input(files, &n, loc);
    if (m->dir && loc[0] != '/') add_input(files, &n, ir_arena_printf(a, "%s/%s", m->dir, loc));
  }
  return n;
}

/* realpath of path's folder + its last component: comparable even before the file exists. */
static bool canonical(const char *path, char *out, size_t size) {
  char dir_copy[PATH_MAX], base_copy[PATH_MAX], real_dir[PATH_MAX];
  if (strlen(path) >= PATH_MAX) return false;
  strcpy(dir_copy, path);
  strcpy(base_copy, path);
  if (!realpath(dirname(dir_copy), real_dir)) return false;
  return snprintf(out, size, "%s/%s", real_dir, basename(base_copy)) < (int)size;
}

int cli_guard_outputs(const KnModel *m, const char *model_path, const char *const *outs, int n_outs) {
  KnArena *a = ir_arena_new();
  InputFile *files = a ? ir_arena_calloc(a, MAX_INPUT_FILES, sizeof *files) : NULL;
  if (!files) {
    ir_arena_free(a);
    return cli_fail("out of memory");
  }
  int n_files = input_files(m, model_path, a, files), rc = CLI_OK;
  char canon[16][PATH_MAX];
  for (int o = 0; o < n_outs && o < 16 && rc == CLI_OK; o++) {
    struct stat st;
    if (!outs[o]) continue;
    for (int i = 0; i < n_files && rc == CLI_OK; i++)
      if (stat(outs[o], &st) == 0 && st.st_dev == files[i].dev && st.st_ino == files[i].ino)
        rc = cli_fail("%s: this output would overwrite the input %s", outs[o], files[i].path);
    if (rc == CLI_OK && !canonical(outs[o], canon[o], sizeof canon[o])) canon[o][0] = 0;
    for (int p = 0; p < o && rc == CLI_OK; p++)
      if (outs[p] && canon[o][0] && strcmp(canon[o], canon[p]) == 0)
        rc = cli_fail("%s: written twice (as %s and %s): give them different names", outs[o], outs[p], outs[o]);
  }
  ir_arena_free(a);
  return rc;
}
