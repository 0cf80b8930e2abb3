/* cg_tfidf.c - TfIdfVectorizer as a runtime kernel (between stages): counting n-grams (with skips)
 * of integer token rows against the pool in the node's attributes. Table lookups, not arithmetic,
 * so generated code would bring nothing. */
#include <string.h>

#include "codegen/cg_stage.h"

typedef struct Pool {
  const int64_t *tokens, *counts, *indexes; /* pool_int64s, ngram_counts (offsets), ngram_indexes */
  int64_t n_tokens, n_counts, n_indexes;
} Pool;

/* Index (into ngram_indexes) of the n-gram gram[0..n) in the pool, or -1. */
static int64_t find_gram(const Pool *p, const int64_t *gram, int n) {
  if (n < 1 || n > p->n_counts) return -1;
  int64_t start = p->counts[n - 1], end = n < p->n_counts ? p->counts[n] : p->n_tokens;
  int64_t first_index = 0; /* n-grams before this length: (offset difference) / length, summed */
  for (int m = 1; m < n; m++) {
    int64_t s = p->counts[m - 1], e = m < p->n_counts ? p->counts[m] : p->n_tokens;
    first_index += (e - s) / m;
  }
  for (int64_t at = start, i = 0; at + n <= end; at += n, i++)
    if (memcmp(p->tokens + at, gram, (size_t)n * sizeof *gram) == 0) return first_index + i;
  return -1;
}

static void count_row(const Pool *p, const KnTensor *x, int64_t row, int64_t len, int min_n, int max_n, int64_t max_skip,
                      double *counts) {
  int64_t gram[64];
  for (int64_t start = 0; start < len; start++)
    for (int n = min_n; n <= max_n; n++)
      for (int64_t skip = 0; skip <= max_skip; skip++) {
        if (n == 1 && skip > 0) break; /* a unigram is the same at every skip */
        if (start + (int64_t)(n - 1) * (skip + 1) >= len) break;
        for (int j = 0; j < n; j++) gram[j] = ir_tensor_get_int(x, row * len + start + j * (skip + 1));
        int64_t idx = find_gram(p, gram, n);
        if (idx >= 0 && idx < p->n_indexes) counts[p->indexes[idx]] += 1;
      }
}

KnStatus cg_run_tfidf(const KnNode *n, KnTensor *const *in, KnArena *a, KnTensor **out, CgDynEnv *env,
                      KnError *err) {
  const KnTensor *x = in[0];
  Pool p = {0};
  p.tokens = ir_attr_ints(n, "pool_int64s", &p.n_tokens);
  p.counts = ir_attr_ints(n, "ngram_counts", &p.n_counts);
  p.indexes = ir_attr_ints(n, "ngram_indexes", &p.n_indexes);
  int64_t n_weights;
  const float *weights = ir_attr_floats(n, "weights", &n_weights);
  int min_n = (int)ir_attr_int(n, "min_gram_length", 1), max_n = (int)ir_attr_int(n, "max_gram_length", 1);
  int64_t max_skip = ir_attr_int(n, "max_skip_count", 0);
  const char *mode = ir_attr_string(n, "mode", "TF");
  if (!p.tokens || !p.counts || !p.indexes || ir_dtype_is_float(x->dtype) || x->dtype == KN_STRING)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "TfIdfVectorizer: only integer tokens with pool_int64s are supported");
  if (min_n < 1 || max_n < min_n || max_n > 64 || max_skip < 0 || (x->rank != 1 && x->rank != 2))
    return kn_fail(err, KN_ERR_INVALID, "TfIdfVectorizer: bad gram lengths, skip count or input rank");
  int64_t cols = 0;
  for (int64_t i = 0; i < p.n_indexes; i++) cols = p.indexes[i] + 1 > cols ? p.indexes[i] + 1 : cols;
  int64_t rows = x->rank == 2 ? x->dims[0] : 1, len = x->dims[x->rank - 1];
  int64_t dims[2] = {rows, cols};
  KnTensor *y = ir_tensor_new(a, KN_F32, x->rank, x->rank == 2 ? dims : dims + 1, err);
  double *counts = ir_arena_calloc(a, (size_t)cols + 1, sizeof *counts);
  if (!y || !counts) return err->status ? err->status : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  float *yd = y->data;
  for (int64_t r = 0; r < rows; r++) {
    memset(counts, 0, (size_t)cols * sizeof *counts);
    count_row(&p, x, r, len, min_n, max_n, max_skip, counts);
    for (int64_t i = 0; i < p.n_indexes; i++) { /* weights are per pool n-gram, placed by its column */
      int64_t c = p.indexes[i];
      double w = weights && i < n_weights ? weights[i] : 1.0, v = counts[c];
      if (strcmp(mode, "IDF") == 0) v = v > 0 ? w : 0;
      else if (strcmp(mode, "TFIDF") == 0) v *= w;
      yd[r * cols + c] = (float)v;
    }
  }
  out[0] = y;
  return KN_OK;
}
