/* onnx_attrs.c - ONNX AttributeProto to KnAttr: every attribute kind, subgraphs (built as nested
 * KnGraphs, depth-limited), and ref_attr_name substitution inside inlined functions. */
#include <stdio.h>
#include <string.h>

#include "frontend/onnx_internal.h"

/* The declared kind, or for old models that leave type UNDEF, the kind of the field that is set. */
static KnAttrKind attr_kind(const Onnx__AttributeProto *a) {
  if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
    return (KnAttrKind)a->type;
  if (a->has_f) return KN_ATTR_FLOAT;
  if (a->has_i) return KN_ATTR_INT;
  if (a->has_s) return KN_ATTR_STRING;
  if (a->t) return KN_ATTR_TENSOR;
  if (a->g) return KN_ATTR_GRAPH;
  if (a->sparse_tensor) return KN_ATTR_SPARSE_TENSOR;
  if (a->tp) return KN_ATTR_TYPE;
  if (a->n_floats) return KN_ATTR_FLOATS;
  if (a->n_ints) return KN_ATTR_INTS;
  if (a->n_strings) return KN_ATTR_STRINGS;
  if (a->n_tensors) return KN_ATTR_TENSORS;
  if (a->n_graphs) return KN_ATTR_GRAPHS;
  if (a->n_sparse_tensors) return KN_ATTR_SPARSE_TENSORS;
  if (a->n_type_protos) return KN_ATTR_TYPES;
  return KN_ATTR_UNDEF;
}

static KnStatus build_subgraph(OnnxImport *im, OnnxScope *scope, KnNode *n,
                               const Onnx__GraphProto *gp, const char *what, KnGraph **out) {
  int depth = scope->depth + 1;
  if (depth > im->lim.max_graph_depth)
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: subgraphs nested deeper than %d", what,
                   im->lim.max_graph_depth);
  KnGraph *g = ir_graph_new(im->m, scope->g, onnx_str(gp->name));
  if (!g) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  g->parent_node = n;
  OnnxScope sub = {.parent = scope, .g = g, .call = scope->call, .depth = depth};
  KnStatus st = onnx_build_graph(im, &sub, gp);
  onnx_map_free(&sub.names);
  *out = g;
  return st;
}

static KnStatus copy_bytes(OnnxImport *im, ProtobufCBinaryData b, KnBytes *out, const char *what) {
  char *d = ir_arena_strndup(im->m->arena, b.len ? (const char *)b.data : "", b.len);
  if (!d) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  *out = (KnBytes){d, b.len};
  return KN_OK;
}

static KnStatus new_type(OnnxImport *im, const Onnx__TypeProto *tp, const char *what,
                         KnType **out) {
  if (!(*out = ir_arena_alloc(im->m->arena, sizeof **out)))
    return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  return onnx_type_from_proto(im, tp, what, *out);
}

/* Allocates the n-entry array of a list attribute. */
static void *list_alloc(OnnxImport *im, KnAttr *at, size_t n, size_t size) {
  at->n = (int64_t)n;
  return ir_arena_calloc(im->m->arena, n ? n : 1, size);
}

static KnStatus convert_list(OnnxImport *im, OnnxScope *scope, KnNode *n,
                             const Onnx__AttributeProto *a, KnAttr *at, const char *what) {
  KnStatus st = KN_OK;
  switch (at->kind) {
  case KN_ATTR_FLOATS:
    if (!(at->floats = list_alloc(im, at, a->n_floats, sizeof(float)))) break;
    if (a->n_floats) memcpy(at->floats, a->floats, a->n_floats * sizeof(float));
    return KN_OK;
  case KN_ATTR_INTS:
    if (!(at->ints = list_alloc(im, at, a->n_ints, sizeof(int64_t)))) break;
    if (a->n_ints) memcpy(at->ints, a->ints, a->n_ints * sizeof(int64_t));
    return KN_OK;
  case KN_ATTR_STRINGS:
    if (!(at->strings = list_alloc(im, at, a->n_strings, sizeof(KnBytes)))) break;
    for (size_t i = 0; !st && i < a->n_strings; i++)
      st = copy_bytes(im, a->strings[i], &at->strings[i], what);
    return st;
  case KN_ATTR_TENSORS:
    if (!(at->tensors = list_alloc(im, at, a->n_tensors, sizeof(KnTensor *)))) break;
    for (size_t i = 0; !st && i < a->n_tensors; i++)
      st = onnx_tensor_from_proto(im, a->tensors[i], what, &at->tensors[i]);
    return st;
  case KN_ATTR_GRAPHS:
    if (!(at->graphs = list_alloc(im, at, a->n_graphs, sizeof(KnGraph *)))) break;
    for (size_t i = 0; !st && i < a->n_graphs; i++)
      st = build_subgraph(im, scope, n, a->graphs[i], what, &at->graphs[i]);
    return st;
  case KN_ATTR_SPARSE_TENSORS:
    if (!(at->sparses = list_alloc(im, at, a->n_sparse_tensors, sizeof(KnSparseTensor *)))) break;
    for (size_t i = 0; !st && i < a->n_sparse_tensors; i++)
      st = onnx_sparse_from_proto(im, a->sparse_tensors[i], what, &at->sparses[i]);
    return st;
  case KN_ATTR_TYPES:
    if (!(at->types = list_alloc(im, at, a->n_type_protos, sizeof(KnType *)))) break;
    for (size_t i = 0; !st && i < a->n_type_protos; i++)
      st = new_type(im, a->type_protos[i], what, &at->types[i]);
    return st;
  default:
    return kn_fail(im->err, KN_ERR_INVALID, "%s: unknown attribute type %d", what, (int)at->kind);
  }
  return st ? st : kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
}

static KnStatus missing(OnnxImport *im, const KnAttr *at, const char *what) {
  return kn_fail(im->err, KN_ERR_INVALID, "%s: %s attribute has no value", what,
                 ir_attr_kind_name(at->kind));
}

/* Fills at (name and kind already set) from a's value fields. */
static KnStatus convert_value(OnnxImport *im, OnnxScope *scope, KnNode *n,
                              const Onnx__AttributeProto *a, KnAttr *at, const char *what) {
  switch (at->kind) {
  case KN_ATTR_FLOAT: at->f = a->f; return KN_OK;
  case KN_ATTR_INT: at->i = a->i; return KN_OK;
  case KN_ATTR_STRING: return copy_bytes(im, a->s, &at->s, what);
  case KN_ATTR_TENSOR:
    if (!a->t) return missing(im, at, what);
    return scope->call ? onnx_tensor_from_proto(im, a->t, what, &at->t)
                       : onnx_tensor_take_proto(im, a->t, what, &at->t);
  case KN_ATTR_GRAPH:
    return a->g ? build_subgraph(im, scope, n, a->g, what, &at->g) : missing(im, at, what);
  case KN_ATTR_SPARSE_TENSOR:
    return a->sparse_tensor ? onnx_sparse_from_proto(im, a->sparse_tensor, what, &at->sp)
                            : missing(im, at, what);
  case KN_ATTR_TYPE: return a->tp ? new_type(im, a->tp, what, &at->tp) : missing(im, at, what);
  case KN_ATTR_UNDEF:
    return kn_fail(im->err, KN_ERR_INVALID, "%s: attribute has no type and no value", what);
  default: return convert_list(im, scope, n, a, at, what);
  }
}

/* The attribute whose value a body attribute takes: itself, or the caller's for ref_attr_name.
 * *src is NULL when the caller omits it (the attribute is then left out). */
static KnStatus attr_source(OnnxImport *im, const OnnxScope *scope, const Onnx__AttributeProto *a,
                            const char *what, const Onnx__AttributeProto **src) {
  *src = a;
  const char *ref = onnx_str(a->ref_attr_name);
  if (!ref[0]) return KN_OK;
  if (!scope->call)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: refers to attribute '%s' outside a function", what,
                   ref);
  *src = onnx_call_attr(scope->call, ref);
  return KN_OK;
}

/* Duplicate names: a linear scan for the usual handful, a hash for hostile nodes with many. */
static bool name_taken(const KnNode *n, OnnxMap *seen, const char *name, bool *oom) {
  if (seen) {
    if (onnx_map_get(seen, name, NULL)) return true;
    *oom = !onnx_map_put(seen, name, NULL);
    return false;
  }
  for (int i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return true;
  return false;
}

static KnStatus build_attr(OnnxImport *im, OnnxScope *scope, const Onnx__AttributeProto *a,
                           KnNode *n, OnnxMap *seen, const char *label) {
  const Onnx__AttributeProto *src = NULL;
  const char *name = onnx_str(a->name);
  char what[768];
  snprintf(what, sizeof what, "%s: attribute '%s'", label, name);
  bool oom = false;
  if (!name[0]) return kn_fail(im->err, KN_ERR_INVALID, "%s: attribute without a name", label);
  if (name_taken(n, seen, name, &oom))
    return kn_fail(im->err, KN_ERR_INVALID, "%s: given twice", what);
  KnStatus st = oom ? kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what)
                    : attr_source(im, scope, a, what, &src);
  if (st || !src) return st;
  KnAttr *at = &n->attrs[n->n_attrs];
  at->name = ir_arena_strdup(im->m->arena, name);
  at->doc = ir_arena_strdup(im->m->arena, onnx_str(a->doc_string));
  at->kind = attr_kind(src);
  if (!at->name || !at->doc) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
  if ((unsigned)at->kind > KN_ATTR_TYPES)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: unknown attribute type %d", what, (int)at->kind);
  n->n_attrs++;
  return convert_value(im, scope, n, src, at, what);
}

KnStatus onnx_build_attrs(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np, KnNode *n,
                          const char *label) {
  n->attrs = ir_arena_calloc(im->m->arena, np->n_attribute ? np->n_attribute : 1, sizeof *n->attrs);
  if (!n->attrs) return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", label);
  OnnxMap seen = {0};
  KnStatus st = KN_OK;
  for (size_t i = 0; !st && i < np->n_attribute; i++)
    st = build_attr(im, scope, np->attribute[i], n, np->n_attribute > 16 ? &seen : NULL, label);
  onnx_map_free(&seen);
  return st;
}
