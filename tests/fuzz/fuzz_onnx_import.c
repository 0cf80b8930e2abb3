/* fuzz_onnx_import.c - libFuzzer target: arbitrary bytes as an ONNX ModelProto through the
 * importer, shape inference and the verifier, the way fe_load_model treats a model file from a
 * stranger. */
#include <stddef.h>
#include <stdint.h>

#include "frontend/frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Tight limits: a legitimately declared 4 GiB initializer must fail with KN_ERR_LIMIT rather
   * than make the fuzzer's RSS limit fire. */
  KnLimits lim = {.max_file_bytes = 16u << 20, .max_tensor_elems = (int64_t)1 << 24,
                  .max_weight_bytes = 64u << 20, .max_graph_depth = 16, .max_proto_depth = 64};
  KnError err = {0};
  KnModel *m = NULL;
  KnStatus st = onnx_import_memory(data, size, "<fuzz>", NULL, &lim, &m, &err);
  if (st == KN_OK && m) st = ir_infer_graph(m->graph, &err);
  if (st == KN_OK && m) st = ir_verify(m, &err);
  ir_model_free(m);
  return 0;
}
