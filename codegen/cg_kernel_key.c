/* cg_kernel_key.c - a kernel's identity: two nodes whose kernels would be built from the same facts
 * (op, opset, attributes, input and output types, and the values of small constant inputs, the
 * only constants lowerings may read at compile time) share one kernel function. ResNet's repeated
 * blocks then compile each distinct conv once. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cg.h"

typedef struct KeyBuf {
  char *s;
  size_t len, cap;
  bool ok;
} KeyBuf;

static void put(KeyBuf *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(KeyBuf *k, const char *fmt, ...) {
  if (!k->ok) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(k->s + k->len, k->cap - k->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= k->cap - k->len) k->ok = false;
  else k->len += (size_t)n;
}

static uint64_t hash_bytes(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

static void put_type(KeyBuf *k, const KnType *t) {
  char buf[512];
  ir_type_format(t, buf, sizeof buf);
  put(k, "%s;", buf);
}

static void put_tensor(KeyBuf *k, const KnTensor *t) {
  put(k, "t%d/%d/%lld/%llx;", (int)t->dtype, t->rank, (long long)t->numel,
      (unsigned long long)hash_bytes(t->data, t->nbytes));
}

static void put_attr(KeyBuf *k, const KnAttr *a) {
  put(k, "@%s:%d:", a->name, (int)a->kind);
  switch (a->kind) {
  case KN_ATTR_FLOAT: put(k, "%a;", (double)a->f); break;
  case KN_ATTR_INT: put(k, "%lld;", (long long)a->i); break;
  case KN_ATTR_STRING: put(k, "%llx;", (unsigned long long)hash_bytes(a->s.data, a->s.len)); break;
  case KN_ATTR_TENSOR: put_tensor(k, a->t); break;
  case KN_ATTR_FLOATS: put(k, "%llx;", (unsigned long long)hash_bytes(a->floats, (size_t)a->n * sizeof *a->floats)); break;
  case KN_ATTR_INTS: put(k, "%llx;", (unsigned long long)hash_bytes(a->ints, (size_t)a->n * sizeof *a->ints)); break;
  default: k->ok = false; break; /* graphs, string lists, ...: never shared */
  }
}

bool cg_kernel_key(const KnNode *n, char *buf, size_t size) {
  KeyBuf k = {buf, 0, size, true};
  put(&k, "%d/%d/%d|", (int)n->op, (int)n->domain, n->opset);
  for (int i = 0; i < n->n_attrs; i++) put_attr(&k, &n->attrs[i]);
  for (int i = 0; i < n->n_inputs; i++) {
    const KnValue *v = n->inputs[i];
    if (!v) {
      put(&k, "-;");
      continue;
    }
    put_type(&k, &v->type);
    if (v->init && v->init->numel <= CG_CONST_READ_MAX) put_tensor(&k, v->init);
    if (v->sym_data) put(&k, "s%llx;", (unsigned long long)hash_bytes(v->sym_data, (size_t)v->sym_len * sizeof *v->sym_data));
  }
  put(&k, "|");
  for (int i = 0; i < n->n_outputs; i++) {
    if (n->outputs[i]) put_type(&k, &n->outputs[i]->type);
    else put(&k, "-;");
  }
  return k.ok;
}
