/* onnx_scope.c - name resolution while importing: a small string hash, the scopes that map ONNX
 * value names to IR values (renaming inside inlined functions), and fresh unique names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx_internal.h"

static size_t hash_str(const char *s) {
  size_t h = 1469598103934665603u;
  while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211u;
  return h;
}

static size_t map_slot(const OnnxMap *m, const char *key) {
  size_t i = hash_str(key) & (m->cap - 1);
  while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
  return i;
}

static bool map_grow(OnnxMap *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  OnnxMap bigger = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(void *)), cap, 0};
  if (!bigger.keys || !bigger.vals) {
    onnx_map_free(&bigger);
    return false;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[i]) continue;
    size_t j = map_slot(&bigger, m->keys[i]);
    bigger.keys[j] = m->keys[i];
    bigger.vals[j] = m->vals[i];
    bigger.used++;
  }
  onnx_map_free(m);
  *m = bigger;
  return true;
}

bool onnx_map_put(OnnxMap *m, const char *key, void *val) {
  if ((m->used + 1) * 2 > m->cap && !map_grow(m)) return false;
  size_t i = map_slot(m, key);
  if (!m->keys[i]) m->used++;
  m->keys[i] = key;
  m->vals[i] = val;
  return true;
}

bool onnx_map_get(const OnnxMap *m, const char *key, void **val) {
  if (!m->cap) return false;
  size_t i = map_slot(m, key);
  if (!m->keys[i]) return false;
  if (val) *val = m->vals[i];
  return true;
}

void onnx_map_free(OnnxMap *m) {
  free(m->keys);
  free(m->vals);
  *m = (OnnxMap){0};
}

KnValue *onnx_scope_find(const OnnxScope *s, const char *name, bool *found) {
  if (!s->call) {
    KnValue *v = ir_find_value(s->g, name);
    *found = v != NULL;
    return v;
  }
  for (; s; s = s->parent) {
    void *v;
    if (onnx_map_get(&s->names, name, &v)) {
      *found = true;
      return v;
    }
  }
  *found = false;
  return NULL;
}

/* Index of name among the function's outputs, or -1. */
static int formal_output(const Onnx__FunctionProto *fn, const char *name) {
  for (size_t k = 0; k < fn->n_output; k++)
    if (strcmp(onnx_str(fn->output[k]), name) == 0) return (int)k;
  return -1;
}

KnValue *onnx_scope_define(OnnxImport *im, OnnxScope *s, const char *name, const char *what) {
  bool found;
  onnx_scope_find(s, name, &found);
  if (found)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: value '%s' is already defined", what, name), NULL;
  if (!s->call) {
    KnValue *v = ir_value_new(s->g, name);
    return v ? v : (kn_fail(im->err, KN_ERR_NOMEM, "out of memory"), NULL);
  }
  KnValue *v = NULL;
  int k = s->parent ? -1 : formal_output(s->call->fn, name);
  if (k >= 0 && (size_t)k < s->call->caller->n_output && onnx_str(s->call->caller->output[k])[0]) {
    /* A function output becomes the caller's output value, named as the caller names it. */
    v = onnx_scope_define(im, s->call->caller_scope, s->call->caller->output[k], what);
    if (!v) return NULL;
  } else {
    const char *fresh = onnx_fresh_name(im, name);
    v = fresh ? ir_value_new(s->g, fresh) : NULL;
  }
  if (!v || !onnx_map_put(&s->names, name, v))
    return kn_fail(im->err, KN_ERR_NOMEM, "out of memory"), NULL;
  return v;
}

static bool reserve_graph(OnnxMap *set, const Onnx__GraphProto *gp);

static bool reserve_attr_graphs(OnnxMap *set, const Onnx__AttributeProto *a) {
  if (a->g && !reserve_graph(set, a->g)) return false;
  for (size_t i = 0; i < a->n_graphs; i++)
    if (!reserve_graph(set, a->graphs[i])) return false;
  return true;
}

/* Adds every name gp (and its subgraphs) defines; depth is bounded by the proto pre-scan. */
static bool reserve_graph(OnnxMap *set, const Onnx__GraphProto *gp) {
  bool ok = true;
  for (size_t i = 0; ok && i < gp->n_input; i++)
    ok = onnx_map_put(set, onnx_str(gp->input[i]->name), NULL);
  for (size_t i = 0; ok && i < gp->n_initializer; i++)
    ok = onnx_map_put(set, onnx_str(gp->initializer[i]->name), NULL);
  for (size_t i = 0; ok && i < gp->n_sparse_initializer; i++) {
    const Onnx__TensorProto *v = gp->sparse_initializer[i]->values;
    ok = !v || onnx_map_put(set, onnx_str(v->name), NULL);
  }
  for (size_t i = 0; ok && i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    for (size_t j = 0; ok && j < np->n_output; j++)
      ok = onnx_map_put(set, onnx_str(np->output[j]), NULL);
    for (size_t j = 0; ok && j < np->n_attribute; j++)
      ok = reserve_attr_graphs(set, np->attribute[j]);
  }
  return ok;
}

const char *onnx_fresh_name(OnnxImport *im, const char *hint) {
  if (!im->reserved_ready) {
    if (im->proto->graph && !reserve_graph(&im->reserved, im->proto->graph)) return NULL;
    im->reserved_ready = true;
  }
  for (;;) {
    const char *name = ir_arena_printf(im->m->arena, "%s__%lld", hint, (long long)im->fresh_id++);
    if (!name) return NULL;
    if (onnx_map_get(&im->reserved, name, NULL)) continue;
    return onnx_map_put(&im->reserved, name, NULL) ? name : NULL;
  }
}

const char *onnx_node_label(const OnnxScope *s, const Onnx__NodeProto *np, char *buf, size_t n) {
  const char *name = onnx_str(np->name), *op = onnx_str(np->op_type);
  int len;
  if (name[0])
    len = snprintf(buf, n, "node '%s' (%s)", name, op);
  else if (np->n_output > 0)
    len = snprintf(buf, n, "node (%s) producing '%s'", op, onnx_str(np->output[0]));
  else
    len = snprintf(buf, n, "node (%s)", op);
  if (s->call && len >= 0 && (size_t)len < n)
    snprintf(buf + len, n - (size_t)len, " in function '%s'", onnx_str(s->call->fn->name));
  return buf;
}
