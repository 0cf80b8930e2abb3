/* attr.c - reading and setting node attributes. */
#include <string.h>

#include "ir/ir.h"

const KnAttr *ir_attr(const KnNode *n, const char *name) {
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t ir_attr_int(const KnNode *n, const char *name, int64_t dflt) {
  const KnAttr *a = ir_attr(n, name);
  return a && a->kind == KN_ATTR_INT ? a->i : dflt;
}

float ir_attr_float(const KnNode *n, const char *name, float dflt) {
  const KnAttr *a = ir_attr(n, name);
  if (a && a->kind == KN_ATTR_FLOAT) return a->f;
  if (a && a->kind == KN_ATTR_INT) return (float)a->i;
  return dflt;
}

const char *ir_attr_string(const KnNode *n, const char *name, const char *dflt) {
  const KnAttr *a = ir_attr(n, name);
  return a && a->kind == KN_ATTR_STRING ? a->s.data : dflt;
}

const int64_t *ir_attr_ints(const KnNode *n, const char *name, int64_t *count) {
  const KnAttr *a = ir_attr(n, name);
  if (!a || a->kind != KN_ATTR_INTS) {
    *count = 0;
    return NULL;
  }
  *count = a->n;
  return a->ints;
}

const float *ir_attr_floats(const KnNode *n, const char *name, int64_t *count) {
  const KnAttr *a = ir_attr(n, name);
  if (!a || a->kind != KN_ATTR_FLOATS) {
    *count = 0;
    return NULL;
  }
  *count = a->n;
  return a->floats;
}

KnAttr *ir_set_attr(KnNode *n, const char *name, KnAttrKind kind) {
  KnArena *arena = n->graph->arena;
  KnAttr *a = (KnAttr *)ir_attr(n, name);
  if (!a) {
    KnAttr *attrs = ir_arena_calloc(arena, (size_t)n->n_attrs + 1, sizeof *attrs);
    const char *dup = ir_arena_strdup(arena, name);
    if (!attrs || !dup) return NULL;
    if (n->n_attrs) memcpy(attrs, n->attrs, (size_t)n->n_attrs * sizeof *attrs);
    n->attrs = attrs;
    a = &attrs[n->n_attrs++];
    a->name = dup;
  }
  const char *keep = a->name;
  *a = (KnAttr){.name = keep, .kind = kind};
  return a;
}

bool ir_set_attr_int(KnNode *n, const char *name, int64_t v) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_INT);
  return a ? (a->i = v, true) : false;
}

bool ir_set_attr_float(KnNode *n, const char *name, float v) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_FLOAT);
  return a ? (a->f = v, true) : false;
}

bool ir_set_attr_string(KnNode *n, const char *name, const char *v) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_STRING);
  char *dup = a ? ir_arena_strdup(n->graph->arena, v) : NULL;
  return dup ? (a->s = (KnBytes){dup, strlen(v)}, true) : false;
}

bool ir_set_attr_ints(KnNode *n, const char *name, const int64_t *v, int64_t count) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_INTS);
  int64_t *copy = a ? ir_arena_calloc(n->graph->arena, (size_t)count, sizeof *copy) : NULL;
  if (!copy) return false;
  if (count) memcpy(copy, v, (size_t)count * sizeof *copy);
  a->ints = copy;
  a->n = count;
  return true;
}

bool ir_set_attr_floats(KnNode *n, const char *name, const float *v, int64_t count) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_FLOATS);
  float *copy = a ? ir_arena_calloc(n->graph->arena, (size_t)count, sizeof *copy) : NULL;
  if (!copy) return false;
  if (count) memcpy(copy, v, (size_t)count * sizeof *copy);
  a->floats = copy;
  a->n = count;
  return true;
}

bool ir_set_attr_tensor(KnNode *n, const char *name, KnTensor *t) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_TENSOR);
  return a ? (a->t = t, true) : false;
}

bool ir_set_attr_graph(KnNode *n, const char *name, KnGraph *g) {
  KnAttr *a = ir_set_attr(n, name, KN_ATTR_GRAPH);
  if (!a) return false;
  a->g = g;
  g->parent = n->graph;
  g->parent_node = n;
  return true;
}
