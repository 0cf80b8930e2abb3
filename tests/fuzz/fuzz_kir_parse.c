/* fuzz_kir_parse.c - libFuzzer target: arbitrary text through the .kir parser; whatever parses must
 * print and parse again (a printer/parser disagreement is a bug, reported by abort()), then goes
 * through shape inference and the verifier as fe_load_model would. */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const KnLimits fuzz_limits = {.max_file_bytes = 4u << 20, .max_tensor_elems = 1 << 20,
                                     .max_weight_bytes = 4u << 20, .max_graph_depth = 16,
                                     .max_proto_depth = 64};

/* Prints m with every tensor inline (no weights file: the second parse has no folder). */
static char *print_model(const KnModel *m, size_t *len) {
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if (!f) abort();
  KnKirPrintOptions o = {.inline_max_bytes = -1};
  KnError err = {0};
  KnStatus st = kir_print(f, m, &o, &err);
  if (fclose(f) != 0) abort();
  if (st != KN_OK) {
    /* The parser accepted it, so the printer must be able to write it back. */
    fprintf(stderr, "kir_print failed on a parsed model: %s\n", err.msg);
    abort();
  }
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  KnError err = {0};
  KnModel *m = NULL;
  if (kir_parse_string((const char *)data, size, "<fuzz>", NULL, &fuzz_limits, &m, &err) != KN_OK)
    return 0;
  size_t len = 0;
  char *text = print_model(m, &len);
  KnModel *again = NULL;
  KnError err2 = {0};
  KnLimits relim = fuzz_limits; /* printed text is larger than the bytes it came from */
  relim.max_file_bytes = 256u << 20;
  if (kir_parse_string(text, len, "<printed>", NULL, &relim, &again, &err2) != KN_OK) {
    fprintf(stderr, "printed model does not parse again: %s\n---\n%s\n---\n", err2.msg, text);
    abort();
  }
  ir_model_free(again);
  free(text);
  /* Then what fe_load_model does: text is the easiest way to reach inference with odd graphs. */
  if (ir_infer_graph(m->graph, &err) == KN_OK) (void)ir_verify(m, &err);
  ir_model_free(m);
  return 0;
}
