/* infer_types.c - checks a node's inputs against the ONNX schema's type constraints (kinds and
 * element dtypes), from the table ir/gen_infer_types.py generates. */
#include <stdio.h>
#include <string.h>

#include "ir/infer_types.h"

enum { IT_TENSOR = 1, IT_SEQ = 2, IT_OPT = 4, IT_MAP = 8, IT_SPARSE = 16 };

typedef struct ItInput {
  unsigned char kinds; /* IT_* bits */
  uint32_t dtypes;     /* bit d set: dtype code d allowed in a tensor */
  int same;            /* an earlier input that must have the same dtype, or -1 */
} ItInput;

typedef struct ItAttr {
  const char *name;
  unsigned kinds; /* bit k set: KnAttrKind k allowed */
} ItAttr;

typedef struct ItOpTypes {
  int n;            /* formal inputs */
  bool variadic;    /* the last formal repeats */
  bool homogeneous; /* ... with one dtype for all repeats */
  ItInput in[9];
  const ItAttr *attrs; /* the schema's attributes, n_attrs of them */
  int n_attrs;
} ItOpTypes;

#include "ir/infer_types_table.h"

_Static_assert(IT_MAX_FORMAL <= 9, "ItOpTypes.in is too short for the generated table");

static unsigned char kind_bit(KnTypeKind k) {
  switch (k) {
  case KN_TYPE_TENSOR: return IT_TENSOR;
  case KN_TYPE_SEQUENCE: return IT_SEQ;
  case KN_TYPE_OPTIONAL: return IT_OPT;
  case KN_TYPE_MAP: return IT_MAP;
  case KN_TYPE_SPARSE: return IT_SPARSE;
  default: return 0;
  }
}

/* "f32, f64 or i64" into buf. */
static void dtype_list(uint32_t mask, char *buf, size_t size) {
  size_t len = 0;
  int left = 0;
  buf[0] = 0;
  for (int d = 1; d < 32; d++) left += (mask >> d) & 1;
  for (int d = 1; d < 32 && len < size; d++) {
    if (!((mask >> d) & 1)) continue;
    left--;
    int w = snprintf(buf + len, size - len, "%s%s", ir_dtype_name((KnDtype)d),
                     left > 1 ? ", " : left == 1 ? " or " : "");
    if (w < 0) return;
    len += (size_t)w;
  }
}

static KnStatus check_input(const KnNode *n, int i, const ItInput *f, KnError *err) {
  const KnValue *v = ir_input(n, i);
  unsigned char k = v ? kind_bit(v->type.kind) : 0;
  if (!k) return KN_OK; /* omitted optional input, or type not known yet */
  char buf[256];
  if (!(f->kinds & k)) {
    ir_type_format(&v->type, buf, sizeof buf);
    return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d ('%s') has type %s, expected a %s", i,
                         v->name, buf, f->kinds & IT_TENSOR ? "tensor" : f->kinds & IT_SEQ ? "sequence" : "optional");
  }
  KnDtype dt = v->type.dtype;
  if (k != IT_TENSOR || dt == KN_UNDEF || (int)dt > IT_MAX_DTYPE || ((f->dtypes >> dt) & 1))
    return KN_OK;
  dtype_list(f->dtypes, buf, sizeof buf);
  return ir_infer_fail(err, n, KN_ERR_INVALID, "input %d ('%s') has dtype %s, expected %s", i,
                       v->name, ir_dtype_name(dt), buf);
}

/* Inputs tied to one type parameter must agree (Add's A and B, Concat's inputs, ...). */
static KnStatus check_same(const KnNode *n, int i, int j, KnError *err) {
  const KnType *a = ir_input_tensor(n, j), *b = ir_input_tensor(n, i);
  if (!a || !b || a->dtype == KN_UNDEF || b->dtype == KN_UNDEF || a->dtype == b->dtype)
    return KN_OK;
  return ir_infer_fail(err, n, KN_ERR_INVALID,
                       "input %d ('%s') has dtype %s, expected %s like input %d ('%s')", i,
                       ir_input(n, i)->name, ir_dtype_name(b->dtype), ir_dtype_name(a->dtype), j,
                       ir_input(n, j)->name);
}

static const char *attr_kind_name(int k) {
  static const char *const names[] = {"undefined", "a float", "an int", "a string", "a tensor",
                                      "a graph", "floats", "ints", "strings", "tensors", "graphs",
                                      "a sparse tensor", "sparse tensors", "a type", "types"};
  return k >= 0 && k < (int)(sizeof names / sizeof names[0]) ? names[k] : "unknown";
}

/* An attribute of the wrong kind would otherwise read as absent and silently get its default
 * (LeakyRelu alpha given as ints). Attributes the schema does not name are left alone. */
static KnStatus check_attrs(const KnNode *n, const ItOpTypes *t, KnError *err) {
  for (int a = 0; a < n->n_attrs; a++) {
    const KnAttr *at = &n->attrs[a];
    for (int s = 0; s < t->n_attrs; s++) {
      if (!at->name || strcmp(at->name, t->attrs[s].name) != 0) continue;
      if ((int)at->kind >= 0 && (int)at->kind < 32 && ((t->attrs[s].kinds >> at->kind) & 1)) break;
      char want[64] = "";
      for (int k = 0, len = 0; k < 32 && len < (int)sizeof want; k++)
        if ((t->attrs[s].kinds >> k) & 1)
          len += snprintf(want + len, sizeof want - (size_t)len, "%s%s", len ? " or " : "",
                          attr_kind_name(k));
      return ir_infer_fail(err, n, KN_ERR_INVALID, "attribute '%s' is %s, expected %s", at->name,
                           attr_kind_name((int)at->kind), want);
    }
  }
  return KN_OK;
}

KnStatus ir_infer_check_types(const KnNode *n, KnError *err) {
  if (n->op <= KN_OP_NONE || n->op >= KN_OP_COUNT) return KN_OK;
  const ItOpTypes *t = &it_table[n->op];
  KnStatus ast = check_attrs(n, t, err);
  if (ast) return ast;
  for (int i = 0; i < n->n_inputs; i++) {
    int f = i < t->n ? i : t->variadic ? t->n - 1 : -1;
    if (f < 0) break; /* more inputs than the schema has: check_arity's business */
    KnStatus st = check_input(n, i, &t->in[f], err);
    int same = i == f ? t->in[f].same : t->homogeneous ? t->n - 1 : -1;
    if (!st && same >= 0) st = check_same(n, i, same, err);
    if (st) return st;
  }
  return KN_OK;
}
