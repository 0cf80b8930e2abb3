/* infer_einsum.c - shape inference for Einsum: parses the equation (ellipsis, implicit output). */
#include <ctype.h>
#include <string.h>

#include "ir/infer_b_internal.h"

/* One term of the equation: its labels in order and where "..." stands (-1: nowhere). */
typedef struct Term {
  const char *labels; /* letters only, ellipsis removed */
  int n_labels;
  int ellipsis;       /* index in labels before which the ellipsis dims go, or -1 */
} Term;

/* Parses s[0..len) (whitespace ignored) into t; labels are copied into the arena. */
static KnStatus parse_term(const KnNode *n, const char *s, size_t len, Term *t, KnError *err) {
  char *lab = ir_arena_alloc(n->graph->arena, len + 1);
  if (!lab) return ib_nomem(err);
  *t = (Term){lab, 0, -1};
  for (size_t i = 0; i < len; i++) {
    if (isspace((unsigned char)s[i])) continue;
    if (s[i] == '.') {
      if (t->ellipsis >= 0 || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
        return ir_infer_fail(err, n, KN_ERR_INVALID, "equation has a malformed or repeated '...'");
      t->ellipsis = t->n_labels;
      i += 2;
    } else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')) {
      lab[t->n_labels++] = s[i];
    } else {
      return ir_infer_fail(err, n, KN_ERR_INVALID, "equation has an unexpected byte 0x%02x",
                           (unsigned char)s[i]);
    }
  }
  return KN_OK;
}

typedef struct Einsum {
  Term *in;
  int n_in;
  Term out;
  bool explicit_out;
  KnDim label_dim[128];
  int label_count[128];
  KnShape ell;        /* broadcast ellipsis dims; rank -1 if unknown */
  bool any_ellipsis;
} Einsum;

static KnStatus parse_equation(const KnNode *n, const char *eq, Einsum *e, KnError *err) {
  const char *arrow = strstr(eq, "->");
  size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
  e->in = ir_arena_calloc(n->graph->arena, (size_t)n->n_inputs + 1, sizeof *e->in);
  if (!e->in) return ib_nomem(err);
  e->n_in = 0;
  size_t start = 0;
  for (size_t i = 0; i <= lhs_len; i++) {
    if (i < lhs_len && eq[i] != ',') continue;
    if (e->n_in >= n->n_inputs)
      return ir_infer_fail(err, n, KN_ERR_INVALID, "equation '%s' has more terms than the %d inputs",
                           eq, n->n_inputs);
    KnStatus st = parse_term(n, eq + start, i - start, &e->in[e->n_in++], err);
    if (st) return st;
    start = i + 1;
  }
  if (e->n_in != n->n_inputs)
    return ir_infer_fail(err, n, KN_ERR_INVALID, "equation '%s' has %d terms, expected %d (inputs)",
                         eq, e->n_in, n->n_inputs);
  e->explicit_out = arrow != NULL;
  return arrow ? parse_term(n, arrow + 2, strlen(arrow + 2), &e->out, err) : KN_OK;
}

/* Records each label's dim and each input's ellipsis dims (broadcast together). */
static KnStatus bind_dims(const KnNode *n, Einsum *e, KnError *err) {
  for (int c = 0; c < 128; c++) e->label_dim[c] = IR_DIM_UNKNOWN, e->label_count[c] = 0;
  e->ell = (KnShape){0, NULL};
  e->any_ellipsis = false;
  for (int i = 0; i < e->n_in; i++) {
    const Term *t = &e->in[i];
    const KnType *x;
    KnStatus st = ib_tensor(n, i, &x, err);
    if (st) return st;
    int r = x->shape.rank, er = r - t->n_labels;
    if (t->ellipsis >= 0) e->any_ellipsis = true;
    if (r >= 0 && (er < 0 || (t->ellipsis < 0 && er != 0)))
      return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d has rank %d, but its term has %d labels",
                           i, r, t->n_labels);
    for (int k = 0; k < t->n_labels; k++) {
      int c = (unsigned char)t->labels[k];
      e->label_count[c]++;
      KnDim d = r < 0 ? IR_DIM_UNKNOWN : x->shape.dims[k < t->ellipsis || t->ellipsis < 0 ? k : k + er];
      KnDim *cur = &e->label_dim[c];
      /* Prefer a concrete dim, then a symbol; a 1 yields to anything else that is known. */
      bool cur_unknown = cur->value < 0 && !cur->sym;
      if (cur_unknown || (cur->value < 0 && d.value >= 0) ||
          (cur->value == 1 && d.value != 1 && (d.value >= 0 || d.sym)))
        *cur = d;
    }
    if (t->ellipsis < 0) continue;
    if (r < 0) e->ell = (KnShape){-1, NULL};
    if (r < 0 || e->ell.rank < 0) continue;
    KnShape part = {er, x->shape.dims + t->ellipsis};
    if ((st = ir_broadcast(n, &e->ell, &part, &e->ell, err))) return st;
  }
  return KN_OK;
}

/* Implicit output: the ellipsis, then labels seen exactly once, in ASCII order. */
static KnStatus implicit_output(const KnNode *n, Einsum *e, KnError *err) {
  char *lab = ir_arena_alloc(n->graph->arena, 129);
  if (!lab) return ib_nomem(err);
  e->out = (Term){lab, 0, e->any_ellipsis ? 0 : -1};
  for (int c = 0; c < 128; c++)
    if (e->label_count[c] == 1) lab[e->out.n_labels++] = (char)c;
  return KN_OK;
}

KnStatus infer_einsum(KnNode *node, KnError *err) {
  const char *eq = ir_attr_string(node, "equation", NULL);
  if (!eq) return ir_infer_fail(err, node, KN_ERR_INVALID, "attribute equation is missing");
  KnStatus st = ir_require_tensor(node, 0, err);
  for (int i = 1; i < node->n_inputs && !st; i++) st = ib_check_same_dtype(node, 0, i, err);
  Einsum *e = st ? NULL : ir_arena_calloc(node->graph->arena, 1, sizeof *e);
  if (st) return st;
  if (!e) return ib_nomem(err);
  if ((st = parse_equation(node, eq, e, err)) || (st = bind_dims(node, e, err))) return st;
  if (!e->explicit_out && (st = implicit_output(node, e, err))) return st;
  KnDtype dt = ir_input_tensor(node, 0)->dtype;
  const Term *o = &e->out;
  int er = o->ellipsis >= 0 ? e->ell.rank : 0;
  if (er < 0) return ir_set_output(node, 0, dt, -1, NULL, err);
  KnDim *dims = ib_dims(node, o->n_labels + er);
  if (!dims) return ib_nomem(err);
  int r = 0;
  for (int k = 0; k <= o->n_labels; k++) {
    for (int j = 0; k == o->ellipsis && j < er; j++) dims[r++] = e->ell.dims[j];
    if (k == o->n_labels) break;
    int c = (unsigned char)o->labels[k];
    if (!e->label_count[c])
      return ir_infer_fail(err, node, KN_ERR_INVALID, "output label '%c' appears in no input", c);
    dims[r++] = e->label_dim[c];
  }
  return ir_set_output(node, 0, dt, r, dims, err);
}
