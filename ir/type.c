/* type.c - dims, shapes and value types: comparison, copying and printing. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

bool ir_dim_equal(KnDim a, KnDim b) {
  if (a.value >= 0 || b.value >= 0) return a.value == b.value;
  if (a.sym == IR_SYM_UNKNOWN || b.sym == IR_SYM_UNKNOWN) return false;
  return a.sym && b.sym && strcmp(a.sym, b.sym) == 0;
}

KnDim ir_dim_mul(KnDim a, KnDim b) {
  int64_t r;
  if (a.value == 0 || b.value == 0) return IR_DIM(0);
  if (a.value == 1) return b;
  if (b.value == 1) return a;
  if (a.value > 0 && b.value > 0 && !ir_mul_overflows(a.value, b.value, &r)) return IR_DIM(r);
  return IR_DIM_UNKNOWN;
}

KnDim ir_dim_add(KnDim a, KnDim b) {
  int64_t r;
  if (a.value == 0) return b;
  if (b.value == 0) return a;
  if (a.value > 0 && b.value > 0 && !ir_add_overflows(a.value, b.value, &r)) return IR_DIM(r);
  return IR_DIM_UNKNOWN;
}

bool ir_shape_is_const(const KnShape *s) {
  if (s->rank < 0) return false;
  for (int i = 0; i < s->rank; i++)
    if (s->dims[i].value < 0) return false;
  return true;
}

bool ir_shape_numel(const KnShape *s, int64_t *out) {
  if (!ir_shape_is_const(s)) return false;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    if (ir_mul_overflows(n, s->dims[i].value, &n)) return false;
  *out = n;
  return true;
}

KnShape ir_shape_copy(KnArena *a, const KnShape *s) {
  KnShape r = {s->rank, NULL};
  if (s->rank > 0) {
    r.dims = ir_arena_calloc(a, (size_t)s->rank, sizeof *r.dims);
    if (r.dims) memcpy(r.dims, s->dims, (size_t)s->rank * sizeof *r.dims);
  }
  return r;
}

bool ir_type_whole(const KnType *t) {
  if (t->shape.rank > 0 && !t->shape.dims) return false;
  return t->kind != KN_TYPE_SEQUENCE && t->kind != KN_TYPE_OPTIONAL ? true : !t->elem || ir_type_whole(t->elem);
}

KnType ir_type_copy(KnArena *a, const KnType *t) {
  KnType r = *t;
  r.shape = ir_shape_copy(a, &t->shape);
  if (t->elem) {
    r.elem = ir_arena_alloc(a, sizeof *r.elem);
    if (r.elem) *r.elem = ir_type_copy(a, t->elem);
  }
  return r;
}

static bool shape_equal(const KnShape *a, const KnShape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++) {
    KnDim x = a->dims[i], y = b->dims[i];
    bool both_unknown = x.value < 0 && !x.sym && y.value < 0 && !y.sym;
    if (!both_unknown && !ir_dim_equal(x, y)) return false;
  }
  return true;
}

bool ir_type_equal(const KnType *a, const KnType *b) {
  if (a->kind != b->kind || a->dtype != b->dtype || a->key_dtype != b->key_dtype) return false;
  if (!shape_equal(&a->shape, &b->shape)) return false;
  if (!a->elem || !b->elem) return a->elem == b->elem;
  return ir_type_equal(a->elem, b->elem);
}

KnType ir_type_tensor(KnArena *a, KnDtype dtype, int rank, const int64_t *dims) {
  KnType t = {.kind = KN_TYPE_TENSOR, .dtype = dtype, .shape = {rank, NULL}};
  if (rank > 0) {
    t.shape.dims = ir_arena_calloc(a, (size_t)rank, sizeof *t.shape.dims);
    for (int i = 0; t.shape.dims && i < rank; i++)
      t.shape.dims[i] = dims ? IR_DIM(dims[i]) : IR_DIM_UNKNOWN;
  }
  return t;
}

/* Appends to buf at *pos, never past size; keeps counting so callers can size buffers. */
static void put(char *buf, size_t size, int *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t size, int *pos, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = (size_t)*pos < size ? size - (size_t)*pos : 0;
  int n = vsnprintf(room ? buf + *pos : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) *pos += n;
}

static void format_type(const KnType *t, char *buf, size_t size, int *pos) {
  switch (t->kind) {
  case KN_TYPE_NONE: put(buf, size, pos, "?"); return;
  case KN_TYPE_SEQUENCE: put(buf, size, pos, "seq<"); break;
  case KN_TYPE_OPTIONAL: put(buf, size, pos, "opt<"); break;
  case KN_TYPE_MAP: put(buf, size, pos, "map<%s,", ir_dtype_name(t->key_dtype)); break;
  case KN_TYPE_TENSOR:
  case KN_TYPE_SPARSE:
    put(buf, size, pos, "%s%s", t->kind == KN_TYPE_SPARSE ? "sparse " : "", ir_dtype_name(t->dtype));
    if (t->shape.rank < 0) {
      put(buf, size, pos, "[*]");
      return;
    }
    put(buf, size, pos, "[");
    for (int i = 0; i < t->shape.rank; i++) {
      KnDim d = t->shape.dims[i];
      const char *sep = i ? "," : "";
      if (d.value >= 0) put(buf, size, pos, "%s%lld", sep, (long long)d.value);
      else put(buf, size, pos, "%s%s", sep, d.sym ? d.sym : "?");
    }
    put(buf, size, pos, "]");
    return;
  }
  if (t->elem) format_type(t->elem, buf, size, pos);
  else put(buf, size, pos, "?");
  put(buf, size, pos, ">");
}

int ir_type_format(const KnType *t, char *buf, size_t size) {
  int pos = 0;
  if (size) buf[0] = 0;
  format_type(t, buf, size, &pos);
  return pos;
}
