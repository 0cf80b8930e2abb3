/* kir_print_value.c - printing the pieces of a .kir statement: types, tensor literals and node
 * attributes, each in the one canonical spelling the parser reads back. */
#include <string.h>

#include "frontend/kir_internal.h"

static const char *dtype_name(KnDtype t) { return ir_dtype_is_known((int)t) ? ir_dtype_name(t) : "undef"; }

static void put_dim(FILE *f, KnDim d) {
  if (d.value >= 0) fprintf(f, "%lld", (long long)d.value);
  else if (!d.sym) fputc('?', f);
  else if (kir_is_ident(d.sym, strlen(d.sym))) fputs(d.sym, f);
  else kir_put_string(f, d.sym, strlen(d.sym));
}

static void put_shape(FILE *f, const KnShape *s) {
  if (s->rank < 0) {
    fputs("[*]", f);
    return;
  }
  fputc('[', f);
  for (int i = 0; i < s->rank; i++) {
    if (i) fputc(',', f);
    put_dim(f, s->dims ? s->dims[i] : IR_DIM_UNKNOWN);
  }
  fputc(']', f);
}

void kir_put_type(FILE *f, const KnType *t) {
  switch (t->kind) {
  case KN_TYPE_TENSOR:
  case KN_TYPE_SPARSE:
    fprintf(f, "%s%s", t->kind == KN_TYPE_SPARSE ? "sparse " : "", dtype_name(t->dtype));
    put_shape(f, &t->shape);
    return;
  case KN_TYPE_SEQUENCE: fputs("seq<", f); break;
  case KN_TYPE_OPTIONAL: fputs("opt<", f); break;
  case KN_TYPE_MAP: fprintf(f, "map<%s,", dtype_name(t->key_dtype)); break;
  default: fputc('?', f); return;
  }
  if (t->elem) kir_put_type(f, t->elem);
  else fputc('?', f);
  fputc('>', f);
}

static void put_hex(FILE *f, const unsigned char *p, size_t n) {
  fputs("hex\"", f);
  for (size_t i = 0; i < n; i++) fprintf(f, "%02x", p[i]);
  fputc('"', f);
}

/* One element of a numeric tensor, as the parser reads it for that dtype. */
static void put_elem(FILE *f, const KnTensor *t, int64_t i) {
  const unsigned char *p = t->data;
  char buf[KIR_FLOAT_BUF];
  uint16_t h;
  switch (t->dtype) {
  case KN_F32: {
    float v;
    memcpy(&v, p + 4 * i, 4);
    kir_fmt_f32(buf, v);
    break;
  }
  case KN_F64: {
    double v;
    memcpy(&v, p + 8 * i, 8);
    kir_fmt_f64(buf, v);
    break;
  }
  case KN_F16:
  case KN_BF16:
    memcpy(&h, p + 2 * i, 2);
    kir_fmt_half(buf, h, t->dtype == KN_BF16);
    break;
  case KN_U64: {
    uint64_t v;
    memcpy(&v, p + 8 * i, 8);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    break;
  }
  case KN_I4:
  case KN_U4: {
    int nib = (p[i / 2] >> (4 * (i % 2))) & 0xf;
    snprintf(buf, sizeof buf, "%d", t->dtype == KN_I4 && nib >= 8 ? nib - 16 : nib);
    break;
  }
  default: snprintf(buf, sizeof buf, "%lld", (long long)ir_tensor_get_int(t, i)); break;
  }
  fputs(buf, f);
}

/* Dtypes printed element by element; the rest (f8, complex) print as raw bytes. */
static bool has_elem_syntax(KnDtype t) {
  switch (t) {
  case KN_F32: case KN_F64: case KN_F16: case KN_BF16: case KN_I8: case KN_U8: case KN_I16:
  case KN_U16: case KN_I32: case KN_U32: case KN_I64: case KN_U64: case KN_BOOL: case KN_I4:
  case KN_U4: case KN_STRING:
    return true;
  default:
    return false;
  }
}

static void put_inline_data(FILE *f, const KnTensor *t) {
  if (!has_elem_syntax(t->dtype)) {
    put_hex(f, t->data, t->nbytes);
    return;
  }
  fputc('[', f);
  for (int64_t i = 0; i < t->numel; i++) {
    if (i) fputs(", ", f);
    if (t->dtype == KN_STRING) {
      const KnBytes *s = (const KnBytes *)t->data + i;
      kir_put_string(f, s->data ? s->data : "", s->data ? s->len : 0);
    } else {
      put_elem(f, t, i);
    }
  }
  fputc(']', f);
}

KnStatus kir_put_tensor(KirPrinter *p, const KnTensor *t, bool print_name) {
  if (!ir_dtype_is_known((int)t->dtype))
    return kn_fail(p->err, KN_ERR_INVALID, "tensor '%s' has unknown dtype %d",
                   t->name ? t->name : "", (int)t->dtype);
  fputs(dtype_name(t->dtype), p->f);
  fputc('[', p->f);
  for (int i = 0; i < t->rank; i++) fprintf(p->f, "%s%lld", i ? "," : "", (long long)t->dims[i]);
  fputs("] ", p->f);
  const char *file, *key;
  if (p->w && kir_weights_ref(p->w, t, &file, &key)) {
    fputc('@', p->f);
    kir_put_string(p->f, file, strlen(file));
    fputc('[', p->f);
    kir_put_string(p->f, key, strlen(key));
    fputc(']', p->f);
  } else {
    if (t->numel > 0 && !t->data)
      return kn_fail(p->err, KN_ERR_INVALID, "tensor '%s' has no data", t->name ? t->name : "");
    put_inline_data(p->f, t);
    if (print_name && t->name) {
      fputs(" name=", p->f);
      kir_put_string(p->f, t->name, strlen(t->name));
    }
  }
  if (t->doc && t->doc[0]) {
    fputs(" doc=", p->f);
    kir_put_string(p->f, t->doc, strlen(t->doc));
  }
  return KN_OK;
}

static KnStatus put_sparse(KirPrinter *p, const KnSparseTensor *s) {
  if (!s->values || !s->indices)
    return kn_fail(p->err, KN_ERR_INVALID, "sparse tensor without values or indices");
  fputs("sparse[", p->f);
  for (int i = 0; i < s->rank; i++) fprintf(p->f, "%s%lld", i ? "," : "", (long long)s->dims[i]);
  fputs("](", p->f);
  KnStatus st = kir_put_tensor(p, s->values, true);
  fputs(", ", p->f);
  if (!st) st = kir_put_tensor(p, s->indices, true);
  fputc(')', p->f);
  return st;
}

/* Element i of a list attribute. */
static KnStatus put_list_elem(KirPrinter *p, const KnAttr *a, int64_t i, int indent) {
  char buf[KIR_FLOAT_BUF];
  switch (a->kind) {
  case KN_ATTR_FLOATS: kir_fmt_f32(buf, a->floats[i]); fputs(buf, p->f); return KN_OK;
  case KN_ATTR_INTS: fprintf(p->f, "%lld", (long long)a->ints[i]); return KN_OK;
  case KN_ATTR_STRINGS: kir_put_string(p->f, a->strings[i].data, a->strings[i].len); return KN_OK;
  case KN_ATTR_TENSORS: return kir_put_tensor(p, a->tensors[i], true);
  case KN_ATTR_GRAPHS: return kir_put_graph(p, a->graphs[i], indent);
  case KN_ATTR_SPARSE_TENSORS: return put_sparse(p, a->sparses[i]);
  case KN_ATTR_TYPES: fputs("type ", p->f); kir_put_type(p->f, a->types[i]); return KN_OK;
  default: return kn_fail(p->err, KN_ERR_INTERNAL, "attribute kind %d is not a list", (int)a->kind);
  }
}

static KnStatus put_list(KirPrinter *p, const KnAttr *a, int indent) {
  if (a->n == 0) {
    fprintf(p->f, "%s[]", ir_attr_kind_name(a->kind));
    return KN_OK;
  }
  fputc('[', p->f);
  KnStatus st = KN_OK;
  for (int64_t i = 0; i < a->n && !st; i++) {
    if (i) fputs(", ", p->f);
    st = put_list_elem(p, a, i, indent);
  }
  fputc(']', p->f);
  return st;
}

static KnStatus put_attr_value(KirPrinter *p, const KnAttr *a, int indent) {
  char buf[KIR_FLOAT_BUF];
  switch (a->kind) {
  case KN_ATTR_FLOAT: kir_fmt_f32(buf, a->f); fputs(buf, p->f); return KN_OK;
  case KN_ATTR_INT: fprintf(p->f, "%lld", (long long)a->i); return KN_OK;
  case KN_ATTR_STRING: kir_put_string(p->f, a->s.data ? a->s.data : "", a->s.data ? a->s.len : 0); return KN_OK;
  case KN_ATTR_TENSOR: return kir_put_tensor(p, a->t, true);
  case KN_ATTR_GRAPH: return kir_put_graph(p, a->g, indent);
  case KN_ATTR_SPARSE_TENSOR: return put_sparse(p, a->sp);
  case KN_ATTR_TYPE: fputs("type ", p->f); kir_put_type(p->f, a->tp); return KN_OK;
  case KN_ATTR_FLOATS: case KN_ATTR_INTS: case KN_ATTR_STRINGS: case KN_ATTR_TENSORS:
  case KN_ATTR_GRAPHS: case KN_ATTR_SPARSE_TENSORS: case KN_ATTR_TYPES:
    return put_list(p, a, indent);
  default:
    return kn_fail(p->err, KN_ERR_INVALID, "attribute '%s' has no kind", a->name);
  }
}

KnStatus kir_put_attr(KirPrinter *p, const KnAttr *a, int indent) {
  size_t len = strlen(a->name);
  if (kir_is_ident(a->name, len)) fputs(a->name, p->f);
  else kir_put_string(p->f, a->name, len);
  fputc('=', p->f);
  KnStatus st = KN_OK;
  if (a->ref_attr_name) {
    if (a->kind == KN_ATTR_UNDEF)
      return kn_fail(p->err, KN_ERR_INVALID, "attribute '%s' has no kind", a->name);
    fprintf(p->f, "ref %s ", ir_attr_kind_name(a->kind));
    kir_put_string(p->f, a->ref_attr_name, strlen(a->ref_attr_name));
  } else {
    st = put_attr_value(p, a, indent);
  }
  if (!st && a->doc && a->doc[0]) {
    fputs(" attr_doc=", p->f);
    kir_put_string(p->f, a->doc, strlen(a->doc));
  }
  return st;
}
