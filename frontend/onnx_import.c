/* onnx_import.c - ONNX ModelProto to kiln's IR: reading the file, the model header (ir_version,
 * opsets, metadata), graphs (initializers, inputs, outputs, value_info) and nodes. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frontend/onnx_internal.h"

enum { IR_VERSION_MIN = 3, IR_VERSION_MAX = 10 };

static KnStatus oom(OnnxImport *im, const char *what) {
  return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", what);
}

/* ---- values --------------------------------------------------------------------------------- */

static KnStatus add_init(OnnxImport *im, OnnxScope *scope, const char *name, KnTensor *t,
                         const char *what) {
  KnGraph *g = scope->g;
  KnValue *v = onnx_scope_define(im, scope, name, what);
  if (!v) return im->err->status;
  v->init = t;
  t->name = v->name;
  v->type = ir_type_tensor(g->arena, t->dtype, t->rank, t->dims);
  if ((t->rank > 0 && !v->type.shape.dims) ||
      !IR_PUSH(g->arena, g->inits, g->n_inits, g->cap_inits, v))
    return oom(im, what);
  return KN_OK;
}

static KnStatus build_inits(OnnxImport *im, OnnxScope *scope, const Onnx__GraphProto *gp) {
  char what[512];
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const char *name = onnx_str(gp->initializer[i]->name);
    snprintf(what, sizeof what, "initializer '%s'", name);
    if (!name[0]) return kn_fail(im->err, KN_ERR_INVALID, "initializer %zu has no name", i);
    KnTensor *t = NULL;
    KnStatus st = scope->call ? onnx_tensor_from_proto(im, gp->initializer[i], what, &t)
                              : onnx_tensor_take_proto(im, gp->initializer[i], what, &t);
    if (!st) st = add_init(im, scope, name, t, what);
    if (st) return st;
  }
  for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
    const Onnx__SparseTensorProto *spp = gp->sparse_initializer[i];
    const char *name = spp->values ? onnx_str(spp->values->name) : "";
    snprintf(what, sizeof what, "sparse initializer '%s'", name);
    if (!name[0]) return kn_fail(im->err, KN_ERR_INVALID, "sparse initializer %zu has no name", i);
    KnSparseTensor *sp = NULL;
    KnTensor *t = NULL;
    KnStatus st = onnx_sparse_from_proto(im, spp, what, &sp);
    if (!st) st = onnx_sparse_densify(im, sp, what, &t);
    if (!st) st = add_init(im, scope, name, t, what);
    if (st) return st;
  }
  return KN_OK;
}

/* Graph inputs; one naming an initializer of this graph gives it a default (ir_version < 4). */
static KnStatus build_inputs(OnnxImport *im, OnnxScope *scope, const Onnx__GraphProto *gp) {
  KnGraph *g = scope->g;
  char what[512];
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    const char *name = onnx_str(vi->name);
    snprintf(what, sizeof what, "graph '%s': input '%s'", g->name, name);
    if (!name[0])
      return kn_fail(im->err, KN_ERR_INVALID, "graph '%s': input %zu has no name", g->name, i);
    KnType type;
    KnStatus st = onnx_type_from_proto(im, vi->type, what, &type);
    if (st) return st;
    bool found;
    KnValue *v = onnx_scope_find(scope, name, &found);
    if (!(found && v && v->init && v->graph == g && !v->is_input)) {
      v = onnx_scope_define(im, scope, name, what);
      if (!v) return im->err->status;
      v->type = type;
    }
    v->is_input = true;
    v->doc = ir_arena_strdup(g->arena, onnx_str(vi->doc_string));
    if (!v->doc || !IR_PUSH(g->arena, g->inputs, g->n_inputs, g->cap_inputs, v))
      return oom(im, what);
  }
  return KN_OK;
}

static KnStatus build_outputs(OnnxImport *im, OnnxScope *scope, const Onnx__GraphProto *gp) {
  KnGraph *g = scope->g;
  char what[512];
  for (size_t i = 0; i < gp->n_output; i++) {
    const char *name = onnx_str(gp->output[i]->name);
    snprintf(what, sizeof what, "graph '%s': output '%s'", g->name, name);
    bool found;
    KnValue *v = onnx_scope_find(scope, name, &found);
    if (!v) return kn_fail(im->err, KN_ERR_INVALID, "%s is not defined", what);
    if (v->type.kind == KN_TYPE_NONE) {
      KnStatus st = onnx_type_from_proto(im, gp->output[i]->type, what, &v->type);
      if (st) return st;
    }
    if (!ir_add_output(g, v)) return oom(im, what);
  }
  return KN_OK;
}

/* Declared types of intermediate values; inference merges them with what it computes. Entries
 * naming nothing are ignored, as ONNX tools do. */
static KnStatus apply_value_info(OnnxImport *im, OnnxScope *scope, const Onnx__GraphProto *gp) {
  char what[512];
  for (size_t i = 0; i < gp->n_value_info; i++) {
    const char *name = onnx_str(gp->value_info[i]->name);
    bool found;
    KnValue *v = onnx_scope_find(scope, name, &found);
    if (!v || v->type.kind != KN_TYPE_NONE) continue;
    snprintf(what, sizeof what, "value_info '%s'", name);
    KnStatus st = onnx_type_from_proto(im, gp->value_info[i]->type, what, &v->type);
    if (st) return st;
  }
  return KN_OK;
}

KnStatus onnx_build_graph(OnnxImport *im, OnnxScope *scope, const Onnx__GraphProto *gp) {
  KnGraph *g = scope->g;
  if (gp->name && gp->name[0] && !(g->name = ir_arena_strdup(g->arena, gp->name)))
    return oom(im, "graph");
  if (!(g->doc = ir_arena_strdup(g->arena, onnx_str(gp->doc_string)))) return oom(im, "graph");
  KnStatus st = build_inits(im, scope, gp);
  if (!st) st = build_inputs(im, scope, gp);
  for (size_t i = 0; !st && i < gp->n_node; i++) st = onnx_build_node(im, scope, gp->node[i]);
  if (!st) st = build_outputs(im, scope, gp);
  if (!st) st = apply_value_info(im, scope, gp);
  return st;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

/* The op for np in scope, with its opset; KN_OP_NONE and *fn set for a model-local function. */
static KnStatus resolve_op(OnnxImport *im, const OnnxScope *scope, const Onnx__NodeProto *np,
                           const char *label, KnOp *op, int64_t *opset,
                           const Onnx__FunctionProto **fn) {
  const char *domain = onnx_str(np->domain), *op_type = onnx_str(np->op_type);
  KnDomain d;
  bool known = ir_domain_from_name(domain, &d);
  *op = known ? ir_op_lookup(d, op_type) : KN_OP_NONE;
  *fn = *op == KN_OP_NONE ? onnx_find_function(im, domain, op_type) : NULL;
  *opset = onnx_scope_opset(im, scope, domain);
  if (*fn) return KN_OK;
  if (!op_type[0]) return kn_fail(im->err, KN_ERR_INVALID, "%s: no op_type", label);
  if (!known) return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: unknown domain '%s'", label, domain);
  if (*opset <= 0)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED,
                   "%s: domain '%s' is not in the model's opset_import", label, domain);
  if (*opset > ir_domain_max_opset(d))
    return kn_fail(im->err, KN_ERR_UNSUPPORTED,
                   "%s: opset %lld of domain '%s' is newer than supported (%d)", label,
                   (long long)*opset, domain, ir_domain_max_opset(d));
  if (*op == KN_OP_NONE)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "%s: unknown op '%s' in domain '%s'", label,
                   op_type, domain);
  if (ir_ops[*op].since > *opset)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED,
                   "%s: %s needs opset %d of domain '%s', the model imports %lld", label, op_type,
                   ir_ops[*op].since, domain, (long long)*opset);
  return KN_OK;
}

static KnStatus check_arity(OnnxImport *im, const Onnx__NodeProto *np, KnOp op, const char *label) {
  const KnOpInfo *info = &ir_ops[op];
  if (np->n_input < (size_t)info->min_inputs || np->n_input > (size_t)info->max_inputs)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: %zu inputs, expected %d to %d", label, np->n_input,
                   info->min_inputs, info->max_inputs);
  if (np->n_output < (size_t)info->min_outputs || np->n_output > (size_t)info->max_outputs)
    return kn_fail(im->err, KN_ERR_INVALID, "%s: %zu outputs, expected %d to %d", label,
                   np->n_output, info->min_outputs, info->max_outputs);
  return KN_OK;
}

static KnNode *new_node(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np, KnOp op,
                        int64_t opset) {
  KnArena *a = scope->g->arena;
  KnNode *n = ir_arena_alloc(a, sizeof *n);
  if (!n) return NULL;
  n->name = ir_arena_strdup(a, onnx_str(np->name));
  n->doc = ir_arena_strdup(a, onnx_str(np->doc_string));
  n->op = op;
  n->domain = ir_ops[op].domain;
  n->opset = (int)opset;
  n->graph = scope->g;
  n->n_inputs = (int)np->n_input;
  n->n_outputs = (int)np->n_output;
  n->inputs = ir_arena_calloc(a, np->n_input + 1, sizeof *n->inputs);
  n->outputs = ir_arena_calloc(a, np->n_output + 1, sizeof *n->outputs);
  return n->name && n->doc && n->inputs && n->outputs ? n : NULL;
}

static KnStatus bind_node_inputs(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np,
                                 KnNode *n, const char *label) {
  for (size_t i = 0; i < np->n_input; i++) {
    const char *name = onnx_str(np->input[i]);
    bool found;
    if (!name[0]) continue; /* omitted optional input */
    n->inputs[i] = onnx_scope_find(scope, name, &found);
    if (!found)
      return kn_fail(im->err, KN_ERR_INVALID, "%s: input '%s' is not defined before this node",
                     label, name);
  }
  return KN_OK;
}

static KnStatus define_node_outputs(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np,
                                    KnNode *n, const char *label) {
  for (size_t i = 0; i < np->n_output; i++) {
    const char *name = onnx_str(np->output[i]);
    if (!name[0]) continue; /* omitted optional output */
    KnValue *v = onnx_scope_define(im, scope, name, label);
    if (!v) return im->err->status;
    v->producer = n;
    v->out_index = (int)i;
    n->outputs[i] = v;
  }
  return KN_OK;
}

KnStatus onnx_build_node(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np) {
  char label[512];
  onnx_node_label(scope, np, label, sizeof label);
  KnOp op;
  int64_t opset;
  const Onnx__FunctionProto *fn;
  KnStatus st = resolve_op(im, scope, np, label, &op, &opset, &fn);
  if (st) return st;
  if (fn) return onnx_inline_call(im, scope, np, fn, label);
  /* Functions calling functions can multiply a small file into billions of nodes. */
  if (++im->nodes > im->lim.max_nodes)
    return kn_fail(im->err, KN_ERR_LIMIT, "%s: the model expands to more than %lld nodes (--max-nodes)", label,
                   (long long)im->lim.max_nodes);
  st = check_arity(im, np, op, label);
  if (st) return st;
  KnNode *n = new_node(im, scope, np, op, opset);
  if (!n) return oom(im, label);
  /* Attributes before outputs: a subgraph may use values defined before the node, not its outputs.
   */
  st = bind_node_inputs(im, scope, np, n, label);
  if (!st) st = onnx_build_attrs(im, scope, np, n, label);
  if (!st) st = define_node_outputs(im, scope, np, n, label);
  if (st) return st;
  KnGraph *g = scope->g;
  n->id = g->n_nodes;
  return IR_PUSH(g->arena, g->nodes, g->n_nodes, g->cap_nodes, n) ? KN_OK : oom(im, label);
}

/* ---- model ---------------------------------------------------------------------------------- */

static KnStatus build_opsets(OnnxImport *im) {
  const Onnx__ModelProto *mp = im->proto;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const char *domain = onnx_str(mp->opset_import[i]->domain);
    int64_t version = mp->opset_import[i]->version;
    KnDomain d;
    for (size_t j = 0; j < i; j++) {
      const char *other = onnx_str(mp->opset_import[j]->domain);
      KnDomain od;
      if (strcmp(other, domain) == 0 ||
          (ir_domain_from_name(domain, &d) && ir_domain_from_name(other, &od) && d == od))
        return kn_fail(im->err, KN_ERR_INVALID, "opset_import lists domain '%s' twice", domain);
    }
    if (version < 1)
      return kn_fail(im->err, KN_ERR_INVALID, "opset_import: domain '%s' has version %lld", domain,
                     (long long)version);
    if (ir_domain_from_name(domain, &d) && version > ir_domain_max_opset(d))
      return kn_fail(im->err, KN_ERR_UNSUPPORTED,
                     "opset %lld of domain '%s' is newer than supported (%d)", (long long)version,
                     domain, ir_domain_max_opset(d));
    if (!ir_model_set_opset(im->m, domain, version)) return oom(im, "opset_import");
  }
  return KN_OK;
}

static KnStatus build_header(OnnxImport *im) {
  const Onnx__ModelProto *mp = im->proto;
  KnModel *m = im->m;
  if (mp->ir_version < IR_VERSION_MIN)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "ir_version %lld is older than supported (%d)",
                   (long long)mp->ir_version, IR_VERSION_MIN);
  if (mp->ir_version > IR_VERSION_MAX)
    return kn_fail(im->err, KN_ERR_UNSUPPORTED, "ir_version %lld is newer than supported (%d)",
                   (long long)mp->ir_version, IR_VERSION_MAX);
  m->ir_version = mp->ir_version;
  m->model_version = mp->model_version;
  m->producer_name = ir_arena_strdup(m->arena, onnx_str(mp->producer_name));
  m->producer_version = ir_arena_strdup(m->arena, onnx_str(mp->producer_version));
  m->domain = ir_arena_strdup(m->arena, onnx_str(mp->domain));
  m->doc = ir_arena_strdup(m->arena, onnx_str(mp->doc_string));
  if (!m->producer_name || !m->producer_version || !m->domain || !m->doc) return oom(im, "model");
  for (size_t i = 0; i < mp->n_metadata_props; i++) {
    KnStrPair p = {ir_arena_strdup(m->arena, onnx_str(mp->metadata_props[i]->key)),
                   ir_arena_strdup(m->arena, onnx_str(mp->metadata_props[i]->value))};
    if (!p.key || !p.value || !IR_PUSH(m->arena, m->metadata, m->n_metadata, m->cap_metadata, p))
      return oom(im, "metadata_props");
  }
  return build_opsets(im);
}

static KnStatus build_model(OnnxImport *im) {
  KnStatus st = build_header(im);
  if (st) return st;
  if (!im->proto->graph) return kn_fail(im->err, KN_ERR_INVALID, "the model has no graph");
  OnnxScope root = {.g = im->m->graph};
  return onnx_build_graph(im, &root, im->proto->graph);
}

/* ---- entry points --------------------------------------------------------------------------- */

static KnStatus check_size(size_t size, const KnLimits *lim, KnError *err) {
  if (size == 0) return kn_fail(err, KN_ERR_FORMAT, "empty file");
  if (size > lim->max_file_bytes)
    return kn_fail(err, KN_ERR_LIMIT, "%zu bytes exceed the model file limit of %zu", size,
                   lim->max_file_bytes);
  return KN_OK;
}

static KnStatus import_proto(OnnxImport *im, const char *path, const char *dir) {
  im->m = ir_model_new(im->err);
  if (!im->m) return im->err->status;
  KnArena *a = im->m->arena;
  im->m->path = ir_arena_strdup(a, path);
  im->m->dir = dir ? ir_arena_strdup(a, dir) : NULL;
  im->dir = im->m->dir;
  if (!im->m->path || (dir && !im->m->dir)) return oom(im, "model");
  return build_model(im);
}

KnStatus onnx_import_memory(const void *data, size_t size, const char *path, const char *dir,
                            const KnLimits *lim, KnModel **out, KnError *err) {
  KnError local = {0};
  if (!err) err = &local;
  *out = NULL;
  if (!path) path = "<memory>";
  OnnxImport im = {.err = err, .lim = lim ? *lim : (KnLimits){0}};
  fe_limits_resolve(&im.lim);
  KnStatus st = check_size(size, &im.lim, err);
  if (!st) st = onnx_proto_scan(data, size, im.lim.max_proto_depth, err);
  Onnx__ModelProto *proto = NULL;
  if (!st && !(proto = onnx__model_proto__unpack(NULL, size, data)))
    st = kn_fail(err, KN_ERR_FORMAT,
                 "not an ONNX model: the protobuf does not parse as a ModelProto");
  if (!st) {
    im.proto = proto;
    st = import_proto(&im, path, dir);
  }
  if (proto) onnx__model_proto__free_unpacked(proto, NULL);
  onnx_external_release(&im);
  onnx_map_free(&im.reserved);
  if (st) {
    ir_model_free(im.m);
    kn_error_prefix(err, "%s: ", path);
    return st;
  }
  *out = im.m;
  return KN_OK;
}

/* The folder holding path ("." for a bare file name), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

KnStatus onnx_import_file(const char *path, const KnLimits *lim, KnModel **out, KnError *err) {
  *out = NULL;
  KnLimits l = lim ? *lim : (KnLimits){0};
  fe_limits_resolve(&l);
  void *data;
  size_t size;
  KnStatus st = fe_map_file(path, &l, &data, &size, err);
  if (st) return st;
  char *dir = dir_of(path);
  st = dir ? onnx_import_memory(data ? data : "", size, path, dir, &l, out, err)
           : kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  free(dir);
  if (data) munmap(data, size);
  return st;
}
