/* onnx_export.c - writes a KnModel as an ONNX ModelProto (protobuf-c), with external data when
 * the weights would not fit in one 2 GiB protobuf message. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "frontend/onnx_export.h"
#include "onnx/onnx.pb-c.h"

/* A tensor whose bytes go to the external data file at offset. */
typedef struct ExtTensor {
  const KnTensor *t;
  int64_t offset;
} ExtTensor;

/* Every proto message is allocated in a scratch arena freed after writing; strings and tensor
 * data are not copied but point into the model, which outlives the export. */
typedef struct Exporter {
  KnArena *a;
  KnError *err;
  int64_t ir_version;
  bool external;            /* large tensors go to the external data file */
  const char *ext_location; /* that file's name, relative to the .onnx */
  ExtTensor *ext;
  int n_ext, cap_ext;
  int64_t ext_end;          /* bytes the data file needs */
  bool failed;              /* err holds why; the half-built proto is discarded */
  int depth;                /* subgraph nesting, guards recursion */
} Exporter;

#define EXPORT_MAX_DEPTH 256

static Onnx__GraphProto *export_graph(Exporter *ex, const KnGraph *g);
static Onnx__TypeProto *export_type(Exporter *ex, const KnType *t);

static void *ex_alloc(Exporter *ex, size_t count, size_t size) {
  void *p = ir_arena_calloc(ex->a, count, size);
  if (!p) {
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_NOMEM, "out of memory building the ONNX protobuf");
  }
  return p;
}

#define DEFINE_NEW(fn, T, init)                \
  static T *fn(Exporter *ex) {                 \
    T *p = ex_alloc(ex, 1, sizeof *p);         \
    if (p) init(p);                            \
    return p;                                  \
  }
DEFINE_NEW(new_model, Onnx__ModelProto, onnx__model_proto__init)
DEFINE_NEW(new_graph, Onnx__GraphProto, onnx__graph_proto__init)
DEFINE_NEW(new_node, Onnx__NodeProto, onnx__node_proto__init)
DEFINE_NEW(new_attr, Onnx__AttributeProto, onnx__attribute_proto__init)
DEFINE_NEW(new_tensor, Onnx__TensorProto, onnx__tensor_proto__init)
DEFINE_NEW(new_sparse, Onnx__SparseTensorProto, onnx__sparse_tensor_proto__init)
DEFINE_NEW(new_value_info, Onnx__ValueInfoProto, onnx__value_info_proto__init)
DEFINE_NEW(new_type, Onnx__TypeProto, onnx__type_proto__init)
DEFINE_NEW(new_type_tensor, Onnx__TypeProto__Tensor, onnx__type_proto__tensor__init)
DEFINE_NEW(new_type_sparse, Onnx__TypeProto__SparseTensor, onnx__type_proto__sparse_tensor__init)
DEFINE_NEW(new_type_seq, Onnx__TypeProto__Sequence, onnx__type_proto__sequence__init)
DEFINE_NEW(new_type_opt, Onnx__TypeProto__Optional, onnx__type_proto__optional__init)
DEFINE_NEW(new_type_map, Onnx__TypeProto__Map, onnx__type_proto__map__init)
DEFINE_NEW(new_shape, Onnx__TensorShapeProto, onnx__tensor_shape_proto__init)
DEFINE_NEW(new_dim, Onnx__TensorShapeProto__Dimension, onnx__tensor_shape_proto__dimension__init)
DEFINE_NEW(new_opset, Onnx__OperatorSetIdProto, onnx__operator_set_id_proto__init)
DEFINE_NEW(new_entry, Onnx__StringStringEntryProto, onnx__string_string_entry_proto__init)

/* Optional string fields: NULL means absent, so empty strings are not written at all. */
static char *opt_str(const char *s) { return s && *s ? (char *)s : NULL; }

static ProtobufCBinaryData bin(KnBytes b) {
  return (ProtobufCBinaryData){b.len, (uint8_t *)b.data};
}

static Onnx__StringStringEntryProto *export_entry(Exporter *ex, const char *key,
                                                  const char *value) {
  Onnx__StringStringEntryProto *p = new_entry(ex);
  if (!p) return NULL;
  p->key = (char *)key;
  p->value = (char *)value;
  return p;
}

/* ---- types ------------------------------------------------------------------------------- */

static Onnx__TensorShapeProto *export_shape(Exporter *ex, const KnShape *s) {
  if (s->rank < 0) return NULL; /* unknown rank: ONNX leaves the shape field out */
  Onnx__TensorShapeProto *sp = new_shape(ex);
  Onnx__TensorShapeProto__Dimension **dims = ex_alloc(ex, (size_t)s->rank + 1, sizeof *dims);
  if (!sp || !dims) return NULL;
  for (int i = 0; i < s->rank; i++) {
    Onnx__TensorShapeProto__Dimension *d = new_dim(ex);
    if (!d) return NULL;
    if (ir_dim_is_const(s->dims[i])) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = s->dims[i].value;
    } else if (s->dims[i].sym && s->dims[i].sym != IR_SYM_UNKNOWN && *s->dims[i].sym) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = (char *)s->dims[i].sym;
    } /* unknown dim: neither field set */
    dims[i] = d;
  }
  sp->n_dim = (size_t)s->rank;
  sp->dim = dims;
  return sp;
}

static bool export_tensor_type(Exporter *ex, const KnType *t, Onnx__TypeProto *p) {
  Onnx__TensorShapeProto *shape = export_shape(ex, &t->shape);
  bool has_dtype = t->dtype != KN_UNDEF;
  if (t->kind == KN_TYPE_SPARSE) {
    Onnx__TypeProto__SparseTensor *st = new_type_sparse(ex);
    if (!st) return false;
    st->has_elem_type = has_dtype;
    st->elem_type = (int32_t)t->dtype;
    st->shape = shape;
    p->value_case = ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE;
    p->sparse_tensor_type = st;
    return true;
  }
  Onnx__TypeProto__Tensor *tt = new_type_tensor(ex);
  if (!tt) return false;
  tt->has_elem_type = has_dtype;
  tt->elem_type = (int32_t)t->dtype;
  tt->shape = shape;
  p->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  p->tensor_type = tt;
  return true;
}

static bool export_nested_type(Exporter *ex, const KnType *t, Onnx__TypeProto *p) {
  Onnx__TypeProto *elem = t->elem ? export_type(ex, t->elem) : NULL;
  if (ex->failed) return false;
  if (t->kind == KN_TYPE_SEQUENCE) {
    Onnx__TypeProto__Sequence *s = new_type_seq(ex);
    if (!s) return false;
    s->elem_type = elem;
    p->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    p->sequence_type = s;
  } else if (t->kind == KN_TYPE_OPTIONAL) {
    Onnx__TypeProto__Optional *o = new_type_opt(ex);
    if (!o) return false;
    o->elem_type = elem;
    p->value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
    p->optional_type = o;
  } else {
    Onnx__TypeProto__Map *mp = new_type_map(ex);
    if (!mp) return false;
    mp->has_key_type = t->key_dtype != KN_UNDEF;
    mp->key_type = (int32_t)t->key_dtype;
    mp->value_type = elem;
    p->value_case = ONNX__TYPE_PROTO__VALUE_MAP_TYPE;
    p->map_type = mp;
  }
  return true;
}

/* NULL for a type not known yet (and on failure, with ex->failed set). */
static Onnx__TypeProto *export_type(Exporter *ex, const KnType *t) {
  if (t->kind == KN_TYPE_NONE) return NULL;
  Onnx__TypeProto *p = new_type(ex);
  if (!p) return NULL;
  bool ok;
  switch (t->kind) {
  case KN_TYPE_TENSOR:
  case KN_TYPE_SPARSE: ok = export_tensor_type(ex, t, p); break;
  case KN_TYPE_SEQUENCE:
  case KN_TYPE_OPTIONAL:
  case KN_TYPE_MAP: ok = export_nested_type(ex, t, p); break;
  default:
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_INTERNAL, "value type has unknown kind %d", (int)t->kind);
    return NULL;
  }
  return ok ? p : NULL;
}

/* A type complete enough for value_info: every element type known. */
static bool type_is_complete(const KnType *t) {
  switch (t->kind) {
  case KN_TYPE_TENSOR:
  case KN_TYPE_SPARSE: return t->dtype != KN_UNDEF;
  case KN_TYPE_SEQUENCE:
  case KN_TYPE_OPTIONAL: return t->elem && type_is_complete(t->elem);
  case KN_TYPE_MAP: return t->key_dtype != KN_UNDEF && t->elem && type_is_complete(t->elem);
  default: return false;
  }
}

/* ---- tensors ----------------------------------------------------------------------------- */

static bool add_external(Exporter *ex, Onnx__TensorProto *p, const KnTensor *t) {
  int64_t offset = (ex->ext_end + ONNX_EXPORT_EXTERNAL_ALIGN - 1) / ONNX_EXPORT_EXTERNAL_ALIGN *
                   ONNX_EXPORT_EXTERNAL_ALIGN;
  int64_t end;
  if (t->nbytes > (size_t)INT64_MAX || ir_add_overflows(offset, (int64_t)t->nbytes, &end)) {
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_LIMIT, "external data file size overflows");
    return false;
  }
  Onnx__StringStringEntryProto **e = ex_alloc(ex, 3, sizeof *e);
  char *off = ir_arena_printf(ex->a, "%lld", (long long)offset);
  char *len = ir_arena_printf(ex->a, "%zu", t->nbytes);
  bool pushed = e && off && len &&
                IR_PUSH(ex->a, ex->ext, ex->n_ext, ex->cap_ext, ((ExtTensor){t, offset}));
  if (!pushed) {
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_NOMEM, "out of memory building the ONNX protobuf");
    return false;
  }
  e[0] = export_entry(ex, "location", ex->ext_location);
  e[1] = export_entry(ex, "offset", off);
  e[2] = export_entry(ex, "length", len);
  p->n_external_data = 3;
  p->external_data = e;
  p->has_data_location = true;
  p->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  ex->ext_end = end;
  return !ex->failed;
}

static bool export_strings(Exporter *ex, Onnx__TensorProto *p, const KnTensor *t) {
  ProtobufCBinaryData *s = ex_alloc(ex, (size_t)t->numel + 1, sizeof *s);
  if (!s) return false;
  const KnBytes *src = t->data;
  for (int64_t i = 0; i < t->numel; i++) s[i] = bin(src[i]);
  p->n_string_data = (size_t)t->numel;
  p->string_data = s;
  return true;
}

/* Data goes out as raw_data (already little-endian in memory), strings as string_data. */
static Onnx__TensorProto *export_tensor(Exporter *ex, const KnTensor *t, const char *name) {
  Onnx__TensorProto *p = new_tensor(ex);
  if (!p) return NULL;
  p->n_dims = (size_t)t->rank;
  p->dims = t->dims;
  p->has_data_type = true;
  p->data_type = (int32_t)t->dtype;
  p->name = opt_str(name);
  p->doc_string = opt_str(t->doc);
  bool ok;
  if (t->dtype == KN_STRING) {
    ok = export_strings(ex, p, t);
  } else if (ex->external && t->nbytes >= ONNX_EXPORT_EXTERNAL_MIN_BYTES) {
    ok = add_external(ex, p, t);
  } else {
    p->has_raw_data = true;
    p->raw_data = (ProtobufCBinaryData){t->nbytes, t->data};
    ok = true;
  }
  return ok ? p : NULL;
}

static Onnx__SparseTensorProto *export_sparse(Exporter *ex, const KnSparseTensor *sp) {
  Onnx__SparseTensorProto *p = new_sparse(ex);
  if (!p || !sp->values || !sp->indices) {
    if (p) kn_fail(ex->err, KN_ERR_INVALID, "sparse tensor lacks values or indices");
    ex->failed = true;
    return NULL;
  }
  p->values = export_tensor(ex, sp->values, sp->values->name);
  p->indices = export_tensor(ex, sp->indices, sp->indices->name);
  p->n_dims = (size_t)sp->rank;
  p->dims = sp->dims;
  return p;
}

/* ---- attributes -------------------------------------------------------------------------- */

/* Fills the list kinds: n elements each converted by the matching export function. */
static bool export_attr_list(Exporter *ex, const KnAttr *at, Onnx__AttributeProto *p) {
  size_t n = (size_t)at->n;
  void **items = NULL;
  if (at->kind == KN_ATTR_STRINGS) {
    ProtobufCBinaryData *s = ex_alloc(ex, n + 1, sizeof *s);
    if (!s) return false;
    for (size_t i = 0; i < n; i++) s[i] = bin(at->strings[i]);
    p->n_strings = n;
    p->strings = s;
    return true;
  }
  if (!(items = ex_alloc(ex, n + 1, sizeof *items))) return false;
  for (size_t i = 0; i < n && !ex->failed; i++) {
    switch (at->kind) {
    case KN_ATTR_TENSORS: items[i] = export_tensor(ex, at->tensors[i], at->tensors[i]->name); break;
    case KN_ATTR_GRAPHS: items[i] = export_graph(ex, at->graphs[i]); break;
    case KN_ATTR_SPARSE_TENSORS: items[i] = export_sparse(ex, at->sparses[i]); break;
    default: items[i] = export_type(ex, at->types[i]); break;
    }
  }
  switch (at->kind) {
  case KN_ATTR_TENSORS: p->n_tensors = n, p->tensors = (Onnx__TensorProto **)items; break;
  case KN_ATTR_GRAPHS: p->n_graphs = n, p->graphs = (Onnx__GraphProto **)items; break;
  case KN_ATTR_SPARSE_TENSORS:
    p->n_sparse_tensors = n, p->sparse_tensors = (Onnx__SparseTensorProto **)items;
    break;
  default: p->n_type_protos = n, p->type_protos = (Onnx__TypeProto **)items; break;
  }
  return !ex->failed;
}

/* Whether the attribute's payload pointers are present (a list's elements included). */
static bool attr_has_payload(const KnAttr *at) {
  void *const *list;
  switch (at->kind) {
  case KN_ATTR_TENSOR: return at->t != NULL;
  case KN_ATTR_GRAPH: return at->g != NULL;
  case KN_ATTR_SPARSE_TENSOR: return at->sp != NULL;
  case KN_ATTR_TYPE: return at->tp != NULL;
  case KN_ATTR_FLOATS: return at->n == 0 || at->floats;
  case KN_ATTR_INTS: return at->n == 0 || at->ints;
  case KN_ATTR_STRINGS: return at->n == 0 || at->strings;
  case KN_ATTR_TENSORS: list = (void *const *)at->tensors; break;
  case KN_ATTR_GRAPHS: list = (void *const *)at->graphs; break;
  case KN_ATTR_SPARSE_TENSORS: list = (void *const *)at->sparses; break;
  case KN_ATTR_TYPES: list = (void *const *)at->types; break;
  default: return true;
  }
  if (at->n > 0 && !list) return false;
  for (int64_t i = 0; i < at->n; i++)
    if (!list[i]) return false;
  return true;
}

static bool export_attr_value(Exporter *ex, const KnAttr *at, Onnx__AttributeProto *p) {
  if (!attr_has_payload(at)) return false;
  switch (at->kind) {
  case KN_ATTR_FLOAT: p->has_f = true, p->f = at->f; return true;
  case KN_ATTR_INT: p->has_i = true, p->i = at->i; return true;
  case KN_ATTR_STRING: p->has_s = true, p->s = bin(at->s); return true;
  case KN_ATTR_TENSOR: return (p->t = export_tensor(ex, at->t, at->t->name)) != NULL;
  case KN_ATTR_GRAPH: return (p->g = export_graph(ex, at->g)) != NULL;
  case KN_ATTR_SPARSE_TENSOR: return (p->sparse_tensor = export_sparse(ex, at->sp)) != NULL;
  case KN_ATTR_TYPE: p->tp = export_type(ex, at->tp); return !ex->failed;
  case KN_ATTR_FLOATS: p->n_floats = (size_t)at->n, p->floats = at->floats; return true;
  case KN_ATTR_INTS: p->n_ints = (size_t)at->n, p->ints = at->ints; return true;
  case KN_ATTR_STRINGS:
  case KN_ATTR_TENSORS:
  case KN_ATTR_GRAPHS:
  case KN_ATTR_SPARSE_TENSORS:
  case KN_ATTR_TYPES: return export_attr_list(ex, at, p);
  default: return false;
  }
}

static Onnx__AttributeProto *export_attr(Exporter *ex, const KnNode *n, const KnAttr *at) {
  Onnx__AttributeProto *p = new_attr(ex);
  if (!p) return NULL;
  bool is_list = at->kind >= KN_ATTR_FLOATS && at->kind <= KN_ATTR_GRAPHS;
  is_list = is_list || at->kind == KN_ATTR_SPARSE_TENSORS || at->kind == KN_ATTR_TYPES;
  if (at->kind <= KN_ATTR_UNDEF || at->kind > KN_ATTR_TYPES || (is_list && at->n < 0)) {
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_INVALID, "node '%s' (%s): attribute '%s' has bad kind %d or count",
            n->name ? n->name : "", ir_ops[n->op].name, at->name, (int)at->kind);
    return NULL;
  }
  p->name = (char *)at->name;
  p->ref_attr_name = opt_str(at->ref_attr_name);
  p->doc_string = opt_str(at->doc);
  p->has_type = true;
  p->type = (Onnx__AttributeProto__AttributeType)at->kind;
  if (!at->ref_attr_name && !export_attr_value(ex, at, p)) {
    if (!ex->failed)
      kn_fail(ex->err, KN_ERR_INVALID, "node '%s' (%s): attribute '%s' has no value",
              n->name ? n->name : "", ir_ops[n->op].name, at->name);
    ex->failed = true;
    return NULL;
  }
  return p;
}

/* ---- nodes and graphs -------------------------------------------------------------------- */

/* Value names of a node's inputs or outputs; "" marks an omitted optional one. */
static char **value_names(Exporter *ex, KnValue *const *vals, int n) {
  char **names = ex_alloc(ex, (size_t)n + 1, sizeof *names);
  if (!names) return NULL;
  for (int i = 0; i < n; i++) names[i] = vals[i] ? (char *)vals[i]->name : (char *)"";
  return names;
}

static Onnx__NodeProto *export_node(Exporter *ex, const KnNode *n) {
  if (n->op <= KN_OP_NONE || n->op >= KN_OP_COUNT) {
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_INTERNAL, "node '%s' has no operator", n->name ? n->name : "");
    return NULL;
  }
  Onnx__NodeProto *p = new_node(ex);
  Onnx__AttributeProto **attrs = ex_alloc(ex, (size_t)n->n_attrs + 1, sizeof *attrs);
  if (!p || !attrs) return NULL;
  p->op_type = (char *)ir_ops[n->op].name;
  p->domain = opt_str(ir_domain_name(n->domain));
  p->name = opt_str(n->name);
  p->doc_string = opt_str(n->doc);
  p->input = value_names(ex, n->inputs, n->n_inputs);
  p->n_input = (size_t)n->n_inputs;
  p->output = value_names(ex, n->outputs, n->n_outputs);
  p->n_output = (size_t)n->n_outputs;
  for (int i = 0; i < n->n_attrs && !ex->failed; i++) attrs[i] = export_attr(ex, n, &n->attrs[i]);
  p->n_attribute = (size_t)n->n_attrs;
  p->attribute = attrs;
  return ex->failed ? NULL : p;
}

/* A value's type, or for an initializer without one the type its tensor implies. */
static KnType value_type(Exporter *ex, const KnValue *v) {
  if (v->type.kind != KN_TYPE_NONE || !v->init) return v->type;
  return ir_type_tensor(ex->a, v->init->dtype, v->init->rank, v->init->dims);
}

static Onnx__ValueInfoProto *export_value_info(Exporter *ex, const KnValue *v) {
  Onnx__ValueInfoProto *p = new_value_info(ex);
  if (!p) return NULL;
  KnType t = value_type(ex, v);
  p->name = (char *)v->name;
  p->doc_string = opt_str(v->doc);
  p->type = export_type(ex, &t);
  return ex->failed ? NULL : p;
}

static bool is_graph_output(const KnGraph *g, const KnValue *v) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return true;
  return false;
}

/* Graph inputs in order; before IR version 4 every initializer also had to be an input. */
static bool export_inputs(Exporter *ex, const KnGraph *g, Onnx__GraphProto *p) {
  size_t cap = (size_t)g->n_inputs + (size_t)g->n_inits + 1;
  Onnx__ValueInfoProto **in = ex_alloc(ex, cap, sizeof *in);
  if (!in) return false;
  size_t n = 0;
  for (int i = 0; i < g->n_inputs; i++) in[n++] = export_value_info(ex, g->inputs[i]);
  for (int i = 0; ex->ir_version < 4 && i < g->n_inits; i++)
    if (!g->inits[i]->is_input) in[n++] = export_value_info(ex, g->inits[i]);
  p->n_input = n;
  p->input = in;
  return !ex->failed;
}

static bool export_outputs(Exporter *ex, const KnGraph *g, Onnx__GraphProto *p) {
  Onnx__ValueInfoProto **out = ex_alloc(ex, (size_t)g->n_outputs + 1, sizeof *out);
  if (!out) return false;
  for (int i = 0; i < g->n_outputs; i++) out[i] = export_value_info(ex, g->outputs[i]);
  p->n_output = (size_t)g->n_outputs;
  p->output = out;
  return !ex->failed;
}

/* value_info: every value computed by a node whose type is known and that is not an output. */
static bool export_value_infos(Exporter *ex, const KnGraph *g, Onnx__GraphProto *p) {
  Onnx__ValueInfoProto **vi = ex_alloc(ex, (size_t)g->n_values + 1, sizeof *vi);
  if (!vi) return false;
  size_t n = 0;
  for (int i = 0; i < g->n_values && !ex->failed; i++) {
    const KnValue *v = g->values[i];
    if (!v->producer || v->init || v->is_input || !type_is_complete(&v->type)) continue;
    if (!is_graph_output(g, v)) vi[n++] = export_value_info(ex, v);
  }
  p->n_value_info = n;
  p->value_info = vi;
  return !ex->failed;
}

static bool export_inits(Exporter *ex, const KnGraph *g, Onnx__GraphProto *p) {
  Onnx__TensorProto **init = ex_alloc(ex, (size_t)g->n_inits + 1, sizeof *init);
  if (!init) return false;
  for (int i = 0; i < g->n_inits && !ex->failed; i++) {
    const KnValue *v = g->inits[i];
    if (!v->init) {
      ex->failed = true;
      kn_fail(ex->err, KN_ERR_INTERNAL, "initializer '%s' has no data", v->name);
      return false;
    }
    init[i] = export_tensor(ex, v->init, v->name);
  }
  p->n_initializer = (size_t)g->n_inits;
  p->initializer = init;
  return !ex->failed;
}

static Onnx__GraphProto *export_graph(Exporter *ex, const KnGraph *g) {
  if (ex->depth >= EXPORT_MAX_DEPTH) {
    ex->failed = true;
    kn_fail(ex->err, KN_ERR_LIMIT, "subgraphs nest deeper than %d", EXPORT_MAX_DEPTH);
    return NULL;
  }
  Onnx__GraphProto *p = new_graph(ex);
  Onnx__NodeProto **nodes = ex_alloc(ex, (size_t)g->n_nodes + 1, sizeof *nodes);
  if (!p || !nodes) return NULL;
  ex->depth++;
  /* the checker wants a non-empty graph name */
  p->name = g->name && *g->name ? (char *)g->name : (char *)(g->parent ? "subgraph" : "main");
  p->doc_string = opt_str(g->doc);
  for (int i = 0; i < g->n_nodes && !ex->failed; i++) nodes[i] = export_node(ex, g->nodes[i]);
  p->n_node = (size_t)g->n_nodes;
  p->node = nodes;
  bool ok = !ex->failed && export_inits(ex, g, p) && export_inputs(ex, g, p) &&
            export_outputs(ex, g, p) && export_value_infos(ex, g, p);
  ex->depth--;
  return ok ? p : NULL;
}

/* ---- model ------------------------------------------------------------------------------- */

/* Marks in used[] the domains of every node, subgraphs included. */
static void collect_domains(const KnGraph *g, int64_t used[KN_DOMAIN_COUNT], int depth) {
  if (depth > EXPORT_MAX_DEPTH) return;
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    if (n->domain < KN_DOMAIN_COUNT && used[n->domain] < (n->opset > 0 ? n->opset : 1))
      used[n->domain] = n->opset > 0 ? n->opset : 1;
    for (int a = 0; a < n->n_attrs; a++) {
      const KnAttr *at = &n->attrs[a];
      if (at->kind == KN_ATTR_GRAPH && at->g) collect_domains(at->g, used, depth + 1);
      for (int64_t k = 0; at->kind == KN_ATTR_GRAPHS && k < at->n; k++)
        collect_domains(at->graphs[k], used, depth + 1);
    }
  }
}

/* The model's opset imports, plus one for each domain its nodes use but it does not import
 * (graphs built by passes or the C builder), which the checker would otherwise reject. */
static bool export_opsets(Exporter *ex, const KnModel *m, Onnx__ModelProto *p) {
  int64_t used[KN_DOMAIN_COUNT] = {0};
  collect_domains(m->graph, used, 0);
  Onnx__OperatorSetIdProto **ops = ex_alloc(ex, (size_t)m->n_opsets + KN_DOMAIN_COUNT, sizeof *ops);
  if (!ops) return false;
  size_t n = 0;
  for (int i = 0; i < m->n_opsets; i++) {
    KnDomain d;
    if (ir_domain_from_name(m->opsets[i].domain, &d)) used[d] = 0;
    if (!(ops[n] = new_opset(ex))) return false;
    ops[n]->domain = (char *)m->opsets[i].domain; /* "" is written: it names the default domain */
    ops[n]->has_version = true;
    ops[n++]->version = m->opsets[i].version;
  }
  for (int d = 0; d < KN_DOMAIN_COUNT; d++) {
    if (!used[d]) continue;
    if (!(ops[n] = new_opset(ex))) return false;
    ops[n]->domain = (char *)ir_domain_name((KnDomain)d);
    ops[n]->has_version = true;
    ops[n++]->version = used[d];
  }
  p->n_opset_import = n;
  p->opset_import = ops;
  return true;
}

static bool export_metadata(Exporter *ex, const KnModel *m, Onnx__ModelProto *p) {
  Onnx__StringStringEntryProto **md = ex_alloc(ex, (size_t)m->n_metadata + 1, sizeof *md);
  if (!md) return false;
  for (int i = 0; i < m->n_metadata; i++)
    if (!(md[i] = export_entry(ex, m->metadata[i].key, m->metadata[i].value))) return false;
  p->n_metadata_props = (size_t)m->n_metadata;
  p->metadata_props = md;
  return true;
}

static Onnx__ModelProto *export_model(Exporter *ex, const KnModel *m) {
  Onnx__ModelProto *p = new_model(ex);
  if (!p) return NULL;
  p->has_ir_version = true;
  p->ir_version = ex->ir_version;
  p->producer_name = opt_str(m->producer_name);
  p->producer_version = opt_str(m->producer_version);
  p->domain = opt_str(m->domain);
  p->has_model_version = m->model_version != 0;
  p->model_version = m->model_version;
  p->doc_string = opt_str(m->doc);
  if (!export_opsets(ex, m, p) || !export_metadata(ex, m, p)) return NULL;
  p->graph = export_graph(ex, m->graph);
  return ex->failed ? NULL : p;
}

/* ---- writing ----------------------------------------------------------------------------- */

static KnStatus write_all_at(int fd, const void *data, size_t size, int64_t offset, KnError *err,
                             const char *path) {
  const char *p = data;
  while (size > 0) {
    size_t chunk = size > (1u << 30) ? (1u << 30) : size;
    ssize_t w = pwrite(fd, p, chunk, (off_t)offset);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return kn_fail(err, KN_ERR_IO, "external data %s: cannot write: %s", path, strerror(errno));
    p += w;
    size -= (size_t)w;
    offset += w;
  }
  return KN_OK;
}

/* Streams the external tensors into a temporary file beside data_path, then renames it. */
static KnStatus write_external(const Exporter *ex, const char *data_path, KnError *err) {
  size_t len = strlen(data_path);
  char *tmp = malloc(len + 16);
  if (!tmp) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  memcpy(tmp, data_path, len);
  memcpy(tmp + len, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    kn_fail(err, KN_ERR_IO, "external data %s: cannot create: %s", data_path, strerror(errno));
    free(tmp);
    return KN_ERR_IO;
  }
  KnStatus st = KN_OK;
  for (int i = 0; i < ex->n_ext && st == KN_OK; i++)
    st = write_all_at(fd, ex->ext[i].t->data, ex->ext[i].t->nbytes, ex->ext[i].offset, err,
                      data_path);
  if (st == KN_OK &&
      (fchmod(fd, 0644) != 0 || ftruncate(fd, (off_t)ex->ext_end) != 0 || fsync(fd) != 0))
    st = kn_fail(err, KN_ERR_IO, "external data %s: cannot write: %s", data_path, strerror(errno));
  if (close(fd) != 0 && st == KN_OK)
    st = kn_fail(err, KN_ERR_IO, "external data %s: cannot write: %s", data_path, strerror(errno));
  if (st == KN_OK && rename(tmp, data_path) != 0)
    st = kn_fail(err, KN_ERR_IO, "external data %s: cannot rename into place: %s", data_path,
                 strerror(errno));
  if (st != KN_OK) unlink(tmp);
  free(tmp);
  return st;
}

/* Builds the proto; when it would pass the protobuf size limit (or external data is forced),
 * builds it again with the large tensors moved out to the data file. */
static Onnx__ModelProto *build(Exporter *ex, const KnModel *m, bool force_external, size_t *size) {
  Onnx__ModelProto *p = NULL;
  if (!force_external) {
    p = export_model(ex, m);
    if (!p) return NULL;
    *size = onnx__model_proto__get_packed_size(p);
    if (*size <= (size_t)ONNX_EXPORT_MAX_PROTO_BYTES) return p;
  }
  ex->external = true;
  if (!(p = export_model(ex, m))) return NULL;
  *size = onnx__model_proto__get_packed_size(p);
  if (*size > (size_t)ONNX_EXPORT_MAX_PROTO_BYTES) {
    kn_fail(ex->err, KN_ERR_LIMIT, "the model needs %zu bytes of protobuf even with external data "
            "(limit %lld)", *size, (long long)ONNX_EXPORT_MAX_PROTO_BYTES);
    return NULL;
  }
  return p;
}

static KnStatus export_to(KnArena *a, const KnModel *m, const char *path, bool force_external,
                          KnError *err) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  Exporter ex = {.a = a, .err = err, .ir_version = m->ir_version > 0 ? m->ir_version : 8};
  ex.ext_location = ir_arena_printf(a, "%s" ONNX_EXPORT_DATA_SUFFIX, base);
  char *data_path = ir_arena_printf(a, "%s" ONNX_EXPORT_DATA_SUFFIX, path);
  if (!ex.ext_location || !data_path) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  size_t size = 0;
  Onnx__ModelProto *p = build(&ex, m, force_external, &size);
  if (!p) return err && err->status ? err->status : KN_ERR_INTERNAL;
  uint8_t *buf = ir_arena_alloc(a, size);
  if (!buf) return kn_fail(err, KN_ERR_NOMEM, "out of memory for %zu bytes of protobuf", size);
  if (onnx__model_proto__pack(p, buf) != size)
    return kn_fail(err, KN_ERR_INTERNAL, "protobuf packing wrote an unexpected size");
  if (ex.n_ext > 0) {
    KnStatus st = write_external(&ex, data_path, err);
    if (st != KN_OK) return st;
  }
  KnStatus st = fe_write_file_atomic(path, buf, size, err);
  if (st != KN_OK && ex.n_ext > 0) unlink(data_path);
  return st;
}

KnStatus onnx_export_file_ex(const KnModel *m, const char *path, bool force_external,
                             KnError *err) {
  if (!m || !m->graph || !path || !*path)
    return kn_fail(err, KN_ERR_INVALID, "onnx export: no model or no output path");
  KnArena *a = ir_arena_new();
  if (!a) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  KnStatus st = export_to(a, m, path, force_external, err);
  ir_arena_free(a);
  if (st != KN_OK) kn_error_prefix(err, "%s: ", path);
  return st;
}

KnStatus onnx_export_file(const KnModel *m, const char *path, KnError *err) {
  return onnx_export_file_ex(m, path, false, err);
}
