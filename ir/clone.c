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

KnModel *ir_model_clone(const KnModel *src, KnError *err) {
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
  if (!clone_graph(src->graph, m, NULL, NULL, err)) {
    ir_model_free(m);
    return NULL;
  }
  return m;
fail:
  oom(err);
  ir_model_free(m);
  return NULL;
}
