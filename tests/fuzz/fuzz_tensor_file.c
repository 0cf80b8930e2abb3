/* fuzz_tensor_file.c - libFuzzer target: arbitrary bytes as a tensor file through the frontend's
 * readers (TensorProto/.npy, SequenceProto, OptionalProto) and the AOT runtime's
 * kn_aot_read_tensor; when both tensor readers accept the bytes they must agree. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frontend/tensor_file.h"
#include "kiln_aot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const KnLimits fuzz_limits = {.max_file_bytes = 16u << 20, .max_tensor_elems = 1 << 24,
                                     .max_weight_bytes = 64u << 20, .max_graph_depth = 16,
                                     .max_proto_depth = 64};

/* kn_aot_read_tensor only reads paths: one memfd, rewritten for each input, named through /proc. */
static const char *bytes_as_path(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("fuzz_tensor", MFD_CLOEXEC);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0) abort();
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
    if (n <= 0) abort();
    done += (size_t)n;
  }
  return path;
}

/* Both readers accepted the bytes: the same tensor must come out. */
static void compare(const KnTensor *t, const KnAotTensor *a) {
  const char *why = NULL;
  if ((int)t->dtype != a->dtype) why = "dtype";
  else if (t->rank != a->rank) why = "rank";
  else if (t->rank > 0 && memcmp(t->dims, a->dims, (size_t)t->rank * sizeof *t->dims) != 0)
    why = "dims";
  else if (t->dtype != KN_STRING && t->nbytes != a->nbytes) why = "nbytes";
  else if (t->dtype != KN_STRING && t->nbytes && memcmp(t->data, a->data, t->nbytes) != 0)
    why = "data";
  if (!why) return;
  fprintf(stderr, "frontend and runtime readers disagree on %s ", why);
  fprintf(stderr, "(dtype %d/%d rank %d/%d nbytes %zu/%zu)\n", (int)t->dtype, a->dtype, t->rank,
          a->rank, t->nbytes, a->nbytes);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  KnArena *arena = ir_arena_new();
  if (!arena) abort();
  KnError err = {0};
  KnTensor *t = NULL;
  KnStatus st = fe_read_tensor_memory(arena, data, size, "<fuzz>", &fuzz_limits, &t, &err);
  KnTensorList *l = NULL;
  KnError e2 = {0}, e3 = {0};
  (void)fe_read_sequence_memory(arena, data, size, "<fuzz>", KN_TYPE_SEQUENCE, &fuzz_limits, &l,
                                &e2);
  (void)fe_read_sequence_memory(arena, data, size, "<fuzz>", KN_TYPE_OPTIONAL, &fuzz_limits, &l,
                                &e3);

  KnAotTensor at;
  int rc = kn_aot_read_tensor(bytes_as_path(data, size), &at);
  if (rc == KN_AOT_OK) {
    if (st == KN_OK && t) compare(t, &at);
    kn_aot_tensor_free(&at);
  }
  ir_arena_free(arena);
  return 0;
}
