/* clone.c - copying a model so it can be specialized and optimized while the original stays
 * intact (one copy per compiled input shape). Tensor data, strings and attribute types are shared
 * with the source, which must outlive the copy; graphs, nodes and values are new. */
#include <string.h>

#include "ir/ir.h"

static KnGraph *clone_graph(const KnGraph *src, KnModel *dm, KnGraph *parent, KnNode *parent_node,
                            KnError *err);

static KnStatus oom(KnError *err) { return kn_fail(err, KN_ERR_NOMEM, "out of memory copying a model"); }

static KnValue *clone_value(KnGraph *g, const KnValue *s) {
  KnValue *v = ir_value_new(g, s->name);
  if (!v) return NULL;
  v->type = ir_type_copy(g->arena, &s->type);
  if (!ir_type_whole(&v->type)) return NULL;
  v->init = s->init;
  v->doc = s->doc;
  v->sym_data = s->sym_data;
  v->sym_len = s->sym_len;
  return v;
}

static KnStatus clone_attrs(const KnNode *s, KnNode *n, KnModel *dm, KnError *err) {
  KnGraph *g = n->graph;
  n->n_attrs = s->n_attrs;
  n->attrs = ir_arena_calloc(g->arena, (size_t)s->n_attrs + 1, sizeof *n->attrs);
  if (!n->attrs) return oom(err);
  for (int i = 0; i < s->n_attrs; i++) {
    KnAttr *a = &n->attrs[i];
    *a = s->attrs[i];
    if (a->kind == KN_ATTR_GRAPH) {
      if (!(a->g = clone_graph(s->attrs[i].g, dm, g, n, err))) return err->status;
    } else if (a->kind == KN_ATTR_GRAPHS) {
      a->graphs = ir_arena_calloc(g->arena, (size_t)a->n + 1, sizeof *a->graphs);
      if (!a->graphs) return oom(err);
      for (int64_t j = 0; j < a->n; j++)
        if (!(a->graphs[j] = clone_graph(s->attrs[i].graphs[j], dm, g, n, err))) return err->status;
    }
  }
  return KN_OK;
}

static KnStatus clone_node(const KnNode *s, KnGraph *g, KnModel *dm, KnError *err) {
  KnValue *inputs[s->n_inputs + 1];
  for (int i = 0; i < s->n_inputs; i++)
    inputs[i] = s->inputs[i] ? ir_find_value(g, s->inputs[i]->name) : NULL;
  KnNode *n = ir_add_node(g, s->op, s->name, inputs, s->n_inputs, 0, err);
  if (!n) return err->status;
  n->domain = s->domain;
  n->opset = s->opset;
  n->doc = s->doc;
  KnStatus st = clone_attrs(s, n, dm, err);
  if (st != KN_OK) return st;
  n->n_outputs = s->n_outputs;
  n->outputs = ir_arena_calloc(g->arena, (size_t)s->n_outputs + 1, sizeof *n->outputs);
  if (!n->outputs) return oom(err);
  for (int i = 0; i < s->n_outputs; i++) {
    if (!s->outputs[i]) continue;
    KnValue *v = clone_value(g, s->outputs[i]);
    if (!v) return oom(err);
    v->producer = n;
    v->out_index = i;
    n->outputs[i] = v;
  }
  return KN_OK;
}

static KnGraph *clone_graph(const KnGraph *src, KnModel *dm, KnGraph *parent, KnNode *parent_node,
                            KnError *err) {
  KnGraph *g = parent ? ir_graph_new(dm, parent, src->name) : dm->graph;
  if (!g) return oom(err), NULL;
  g->parent_node = parent_node;
  g->doc = src->doc;
  g->name = src->name;
  for (int i = 0; i < src->n_inputs; i++) {
    KnValue *v = clone_value(g, src->inputs[i]);
    if (!v) return oom(err), NULL;
    v->is_input = true;
    if (!IR_PUSH(g->arena, g->inputs, g->n_inputs, g->cap_inputs, v)) return oom(err), NULL;
  }
  for (int i = 0; i < src->n_inits; i++) {
    const KnValue *s = src->inits[i];
    KnValue *v = s->is_input ? ir_find_value(g, s->name) : clone_value(g, s);
    if (!v || !IR_PUSH(g->arena, g->inits, g->n_inits, g->cap_inits, v)) return oom(err), NULL;
  }
  for (int i = 0; i < src->n_nodes; i++)
    if (clone_node(src->nodes[i], g, dm, err) != KN_OK) return NULL;
  for (int i = 0; i < src->n_outputs; i++) {
    KnValue *v = ir_find_value(g, src->outputs[i]->name);
    if (!v) return kn_fail(err, KN_ERR_INTERNAL, "copying a model: output %s not found", src->outputs[i]->name), NULL;
    if (!ir_add_output(g, v)) return oom(err), NULL;
  }
  g->next_id = src->next_id;
  return g;
}

/* A new model with src's header fields, opsets and metadata and an empty graph. */
static KnModel *clone_header(const KnModel *src, KnError *err) {
  KnModel *m = ir_model_new(err);
  if (!m) return NULL;
  KnArena *a = m->arena;
  KnGraph *g = m->graph;
  *m = *src;
  m->arena = a;
  m->graph = g;
  m->opsets = NULL;
  m->n_opsets = m->cap_opsets = 0;
  for (int i = 0; i < src->n_opsets; i++)
    if (!ir_model_set_opset(m, src->opsets[i].domain, src->opsets[i].version)) goto fail;
  m->metadata = NULL;
  m->n_metadata = m->cap_metadata = 0;
  for (int i = 0; i < src->n_metadata; i++)
    if (!IR_PUSH(a, m->metadata, m->n_metadata, m->cap_metadata, src->metadata[i])) goto fail;
  return m;
fail:
  oom(err);
  ir_model_free(m);
  return NULL;
}

KnModel *ir_model_clone(const KnModel *src, KnError *err) {
  KnModel *m = clone_header(src, err);
  if (m && !clone_graph(src->graph, m, NULL, NULL, err)) {
    ir_model_free(m);
    return NULL;
  }
  return m;
}

/* ---- extracting a range of nodes ------------------------------------------------------------ */
/* Adds to *list every value of top that the nodes of sub (a subgraph, at any depth) read. */
static bool collect_captures(const KnGraph *sub, const KnGraph *top, KnArena *a, KnValue ***list,
                             int *n, int *cap);

static bool collect_read(KnValue *v, const KnGraph *top, KnArena *a, KnValue ***list, int *n, int *cap) {
  if (!v || v->graph != top) return true;
  for (int i = 0; i < *n; i++)
    if ((*list)[i] == v) return true;
  return IR_PUSH(a, *list, *n, *cap, v);
}

static bool collect_node_reads(const KnNode *nd, const KnGraph *top, KnArena *a, KnValue ***list, int *n,
                               int *cap) {
  for (int j = 0; j < nd->n_inputs; j++)
    if (!collect_read(nd->inputs[j], top, a, list, n, cap)) return false;
  for (int k = 0; k < nd->n_attrs; k++) {
    const KnAttr *at = &nd->attrs[k];
    if (at->kind == KN_ATTR_GRAPH && !collect_captures(at->g, top, a, list, n, cap)) return false;
    for (int64_t s = 0; at->kind == KN_ATTR_GRAPHS && s < at->n; s++)
      if (!collect_captures(at->graphs[s], top, a, list, n, cap)) return false;
  }
  return true;
}

static bool collect_captures(const KnGraph *sub, const KnGraph *top, KnArena *a, KnValue ***list,
                             int *n, int *cap) {
  for (int i = 0; i < sub->n_nodes; i++)
    if (!collect_node_reads(sub->nodes[i], top, a, list, n, cap)) return false;
  for (int i = 0; i < sub->n_outputs; i++)
    if (!collect_read(sub->outputs[i], top, a, list, n, cap)) return false;
  return true;
}

static bool produced_in(const KnValue *v, const KnGraph *g, int first, int end) {
  if (!v->producer || v->producer->graph != g) return false;
  for (int i = first; i < end; i++)
    if (g->nodes[i] == v->producer) return true;
  return false;
}

KnModel *ir_model_extract(const KnModel *src, int first, int end, KnValue *const *outputs,
                          int n_outputs, KnError *err) {
  const KnGraph *sg = src->graph;
  KnModel *m = clone_header(src, err);
  if (!m) return NULL;
  KnGraph *g = m->graph;
  g->name = sg->name;
  KnValue **reads = NULL;
  int n_reads = 0, cap = 0;
  for (int i = first; i < end; i++)
    if (!collect_node_reads(sg->nodes[i], sg, m->arena, &reads, &n_reads, &cap)) goto oom;
  for (int i = 0; i < n_outputs; i++)
    if (!collect_read(outputs[i], sg, m->arena, &reads, &n_reads, &cap)) goto oom;
  /* Initializers stay constants; everything else read from outside the range is an input. */
  for (int i = 0; i < n_reads; i++) {
    const KnValue *v = reads[i];
    if (produced_in(v, sg, first, end)) continue;
    KnValue *nv = clone_value(g, v);
    if (!nv) goto oom;
    if (v->init && !v->is_input) {
      if (!IR_PUSH(g->arena, g->inits, g->n_inits, g->cap_inits, nv)) goto oom;
    } else {
      nv->init = NULL;
      nv->is_input = true;
      if (!IR_PUSH(g->arena, g->inputs, g->n_inputs, g->cap_inputs, nv)) goto oom;
    }
  }
  for (int i = first; i < end; i++)
    if (clone_node(sg->nodes[i], g, m, err) != KN_OK) {
      ir_model_free(m);
      return NULL;
    }
  for (int i = 0; i < n_outputs; i++)
    if (!ir_add_output(g, ir_find_value(g, outputs[i]->name))) goto oom;
  g->next_id = sg->next_id;
  return m;
oom:
  oom(err);
  ir_model_free(m);
  return NULL;
}

/* ---- subgraphs as models --------------------------------------------------------------------- */
KnStatus ir_node_captures(const KnNode *n, KnArena *a, KnValue ***out, int *n_out, KnError *err) {
  KnValue **list = NULL;
  int count = 0, cap = 0;
  for (int k = 0; k < n->n_attrs; k++) {
    const KnAttr *at = &n->attrs[k];
    if (at->kind == KN_ATTR_GRAPH && !collect_captures(at->g, n->graph, a, &list, &count, &cap)) return oom(err);
    for (int64_t s = 0; at->kind == KN_ATTR_GRAPHS && s < at->n; s++)
      if (!collect_captures(at->graphs[s], n->graph, a, &list, &count, &cap)) return oom(err);
  }
  *out = list;
  *n_out = count;
  return KN_OK;
}

/* True if v is defined in sub or in a graph nested inside it. */
static bool defined_within(const KnValue *v, const KnGraph *sub) {
  for (const KnGraph *g = v->graph; g; g = g->parent)
    if (g == sub) return true;
  return false;
}

/* Adds every value read inside sub (at any depth) but defined outside it. */
static bool collect_outer(const KnGraph *g, const KnGraph *sub, KnArena *a, KnValue ***list, int *n, int *cap) {
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *nd = g->nodes[i];
    for (int j = 0; j < nd->n_inputs; j++) {
      KnValue *v = nd->inputs[j];
      if (!v || defined_within(v, sub)) continue;
      bool seen = false;
      for (int k = 0; k < *n && !seen; k++) seen = (*list)[k] == v;
      if (!seen && !IR_PUSH(a, *list, *n, *cap, v)) return false;
    }
    for (int k = 0; k < nd->n_attrs; k++) {
      const KnAttr *at = &nd->attrs[k];
      if (at->kind == KN_ATTR_GRAPH && !collect_outer(at->g, sub, a, list, n, cap)) return false;
      for (int64_t s = 0; at->kind == KN_ATTR_GRAPHS && s < at->n; s++)
        if (!collect_outer(at->graphs[s], sub, a, list, n, cap)) return false;
    }
  }
  for (int i = 0; i < g->n_outputs; i++) {
    KnValue *v = g->outputs[i];
    if (defined_within(v, sub)) continue;
    bool seen = false;
    for (int k = 0; k < *n && !seen; k++) seen = (*list)[k] == v;
    if (!seen && !IR_PUSH(a, *list, *n, *cap, v)) return false;
  }
  return true;
}

KnModel *ir_model_from_subgraph(const KnModel *src, const KnGraph *sub, KnError *err) {
  KnModel *m = clone_header(src, err);
  if (!m) return NULL;
  KnGraph *g = m->graph;
  g->name = sub->name;
  KnValue **outer = NULL;
  int n_outer = 0, cap = 0;
  if (!collect_outer(sub, sub, m->arena, &outer, &n_outer, &cap)) goto oom;
  for (int i = 0; i < sub->n_inputs + n_outer; i++) {
    const KnValue *s = i < sub->n_inputs ? sub->inputs[i] : outer[i - sub->n_inputs];
    if (i >= sub->n_inputs && s->init && !s->is_input) { /* an outer constant stays one */
      KnValue *v = clone_value(g, s);
      if (!v || !IR_PUSH(g->arena, g->inits, g->n_inits, g->cap_inits, v)) goto oom;
      continue;
    }
    KnValue *v = clone_value(g, s);
    if (!v) goto oom;
    v->init = NULL;
    v->is_input = true;
    if (!IR_PUSH(g->arena, g->inputs, g->n_inputs, g->cap_inputs, v)) goto oom;
  }
  for (int i = 0; i < sub->n_inits; i++) {
    if (sub->inits[i]->is_input) continue;
    KnValue *v = clone_value(g, sub->inits[i]);
    if (!v || !IR_PUSH(g->arena, g->inits, g->n_inits, g->cap_inits, v)) goto oom;
  }
  for (int i = 0; i < sub->n_nodes; i++)
    if (clone_node(sub->nodes[i], g, m, err) != KN_OK) {
      ir_model_free(m);
      return NULL;
    }
  for (int i = 0; i < sub->n_outputs; i++)
    if (!ir_add_output(g, ir_find_value(g, sub->outputs[i]->name))) goto oom;
  return m;
oom:
  oom(err);
  ir_model_free(m);
  return NULL;
}
