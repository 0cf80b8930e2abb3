/* graph.c - the builder API: models, graphs, values and nodes made in a model's arena. */
#include <string.h>

#include "ir/ir.h"

KnModel *ir_model_new(KnError *err) {
  KnArena *a = ir_arena_new();
  KnModel *m = a ? ir_arena_alloc(a, sizeof *m) : NULL;
  if (!m) {
    ir_arena_free(a);
    return kn_fail(err, KN_ERR_NOMEM, "out of memory creating a model"), NULL;
  }
  m->arena = a;
  m->ir_version = 8;
  m->producer_name = m->producer_version = m->domain = m->doc = "";
  m->path = "<memory>";
  m->graph = ir_graph_new(m, NULL, "main");
  if (!m->graph) {
    ir_arena_free(a);
    return kn_fail(err, KN_ERR_NOMEM, "out of memory creating a model"), NULL;
  }
  return m;
}

void ir_model_free(KnModel *m) {
  if (m) ir_arena_free(m->arena);
}

bool ir_model_set_opset(KnModel *m, const char *domain, int64_t version) {
  for (int i = 0; i < m->n_opsets; i++) {
    if (strcmp(m->opsets[i].domain, domain) == 0) {
      m->opsets[i].version = version;
      return true;
    }
  }
  const char *d = ir_arena_strdup(m->arena, domain);
  return d && IR_PUSH(m->arena, m->opsets, m->n_opsets, m->cap_opsets, ((KnOpsetImport){d, version}));
}

int64_t ir_model_opset(const KnModel *m, KnDomain d) {
  for (int i = 0; i < m->n_opsets; i++) {
    KnDomain di;
    if (ir_domain_from_name(m->opsets[i].domain, &di) && di == d) return m->opsets[i].version;
  }
  return 0;
}

KnGraph *ir_graph_new(KnModel *m, KnGraph *parent, const char *name) {
  KnGraph *g = ir_arena_alloc(m->arena, sizeof *g);
  if (!g) return NULL;
  g->arena = m->arena;
  g->model = m;
  g->parent = parent;
  g->name = ir_arena_strdup(m->arena, name ? name : "");
  g->doc = "";
  return g->name ? g : NULL;
}

/* Generated names start with '_' and a number, kept unique across enclosing graphs. */
static const char *fresh_name(KnGraph *g, const char *hint) {
  KnGraph *root = g;
  while (root->parent) root = root->parent;
  for (;;) {
    const char *name = ir_arena_printf(g->arena, "%s_%d", hint, root->next_id++);
    if (!name || !ir_find_value(g, name)) return name;
  }
}

/* Open-addressing hash of value names, rebuilt on growth; old tables are left to the arena. */
typedef struct KnNameIndex {
  KnValue **slots;
  uint32_t cap, used; /* cap is a power of two */
} KnNameIndex;

static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

static void index_put(KnNameIndex *ix, KnValue *v) {
  uint32_t i = hash_name(v->name) & (ix->cap - 1);
  while (ix->slots[i]) i = (i + 1) & (ix->cap - 1);
  ix->slots[i] = v;
  ix->used++;
}

static bool index_add(KnGraph *g, KnValue *v) {
  KnNameIndex *ix = g->index;
  if (!ix) {
    ix = g->index = ir_arena_alloc(g->arena, sizeof *ix);
    if (!ix) return false;
  }
  if ((ix->used + 1) * 2 > ix->cap) {
    uint32_t cap = ix->cap ? ix->cap * 2 : 64;
    KnValue **slots = ir_arena_calloc(g->arena, cap, sizeof *slots);
    if (!slots || cap > (1u << 30)) return false;
    KnValue **old = ix->slots;
    uint32_t old_cap = ix->cap;
    *ix = (KnNameIndex){slots, cap, 0};
    for (uint32_t i = 0; i < old_cap; i++)
      if (old[i]) index_put(ix, old[i]);
  }
  index_put(ix, v);
  return true;
}

/* The newest value of that name in g itself (a removed value stays indexed with graph NULL). */
static KnValue *index_find(const KnGraph *g, const char *name) {
  const KnNameIndex *ix = g->index;
  if (!ix) return NULL;
  KnValue *found = NULL;
  for (uint32_t i = hash_name(name) & (ix->cap - 1); ix->slots[i]; i = (i + 1) & (ix->cap - 1))
    if (ix->slots[i]->graph == g && strcmp(ix->slots[i]->name, name) == 0) found = ix->slots[i];
  return found;
}

KnValue *ir_value_new(KnGraph *g, const char *name) {
  KnValue *v = ir_arena_alloc(g->arena, sizeof *v);
  if (!v) return NULL;
  v->name = name ? ir_arena_strdup(g->arena, name) : fresh_name(g, "v");
  v->graph = g;
  v->id = g->n_values;
  v->type.shape.rank = -1;
  v->doc = "";
  if (!v->name || !IR_PUSH(g->arena, g->values, g->n_values, g->cap_values, v)) return NULL;
  return index_add(g, v) ? v : NULL;
}

KnValue *ir_add_input(KnGraph *g, const char *name, KnType type) {
  KnValue *v = ir_value_new(g, name);
  if (!v) return NULL;
  v->type = ir_type_copy(g->arena, &type);
  if (!ir_type_whole(&v->type)) return NULL;
  v->is_input = true;
  return IR_PUSH(g->arena, g->inputs, g->n_inputs, g->cap_inputs, v) ? v : NULL;
}

KnValue *ir_add_init(KnGraph *g, const char *name, KnTensor *t) {
  KnValue *v = ir_value_new(g, name ? name : t->name);
  if (!v) return NULL;
  v->init = t;
  if (!t->name) t->name = v->name;
  v->type = ir_type_tensor(g->arena, t->dtype, t->rank, t->dims);
  return IR_PUSH(g->arena, g->inits, g->n_inits, g->cap_inits, v) ? v : NULL;
}

bool ir_add_output(KnGraph *g, KnValue *v) {
  return IR_PUSH(g->arena, g->outputs, g->n_outputs, g->cap_outputs, v);
}

KnNode *ir_add_node(KnGraph *g, KnOp op, const char *name, KnValue *const *inputs, int n_inputs,
                    int n_outputs, KnError *err) {
  if (op <= KN_OP_NONE || op >= KN_OP_COUNT)
    return kn_fail(err, KN_ERR_INTERNAL, "ir_add_node: bad op %d", (int)op), NULL;
  KnNode *n = ir_arena_alloc(g->arena, sizeof *n);
  if (!n) goto oom;
  n->name = ir_arena_strdup(g->arena, name ? name : "");
  n->op = op;
  n->domain = ir_ops[op].domain;
  n->opset = (int)ir_model_opset(g->model, n->domain);
  n->graph = g;
  n->doc = "";
  n->n_inputs = n_inputs;
  n->n_outputs = n_outputs;
  n->inputs = ir_arena_calloc(g->arena, (size_t)(n_inputs + 1), sizeof *n->inputs);
  n->outputs = ir_arena_calloc(g->arena, (size_t)(n_outputs + 1), sizeof *n->outputs);
  if (!n->name || !n->inputs || !n->outputs) goto oom;
  if (n_inputs) memcpy(n->inputs, inputs, (size_t)n_inputs * sizeof *inputs);
  const char *hint = n->name[0] ? n->name : ir_ops[op].name;
  for (int i = 0; i < n_outputs; i++) {
    const char *vname = fresh_name(g, hint);
    KnValue *v = vname ? ir_value_new(g, vname) : NULL;
    if (!v) goto oom;
    v->producer = n;
    v->out_index = i;
    n->outputs[i] = v;
  }
  n->id = g->n_nodes;
  if (!IR_PUSH(g->arena, g->nodes, g->n_nodes, g->cap_nodes, n)) goto oom;
  return n;
oom:
  return kn_fail(err, KN_ERR_NOMEM, "out of memory adding a %s node", ir_ops[op].name), NULL;
}

KnValue *ir_find_value(const KnGraph *g, const char *name) {
  for (; g; g = g->parent) {
    KnValue *v = index_find(g, name);
    if (v) return v;
  }
  return NULL;
}

void ir_graph_renumber(KnGraph *g) {
  for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->id = i;
  for (int i = 0; i < g->n_values; i++) g->values[i]->id = i;
}

void ir_graph_remove_nodes(KnGraph *g, const bool *keep) {
  int kept = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    if (keep[i]) {
      g->nodes[kept++] = n;
      continue;
    }
    for (int j = 0; j < n->n_outputs; j++)
      if (n->outputs[j]) n->outputs[j]->producer = NULL, n->outputs[j]->graph = NULL;
  }
  g->n_nodes = kept;
  int nv = 0;
  for (int i = 0; i < g->n_values; i++)
    if (g->values[i]->graph) g->values[nv++] = g->values[i];
  g->n_values = nv;
  ir_graph_renumber(g);
}

static void replace_in_graph(KnGraph *g, KnValue *old_value, KnValue *new_value);

static void replace_in_attrs(KnNode *n, KnValue *old_value, KnValue *new_value) {
  for (int a = 0; a < n->n_attrs; a++) {
    KnAttr *at = &n->attrs[a];
    if (at->kind == KN_ATTR_GRAPH) replace_in_graph(at->g, old_value, new_value);
    if (at->kind == KN_ATTR_GRAPHS)
      for (int64_t k = 0; k < at->n; k++) replace_in_graph(at->graphs[k], old_value, new_value);
  }
}

static void replace_in_graph(KnGraph *g, KnValue *old_value, KnValue *new_value) {
  for (int i = 0; i < g->n_nodes; i++) {
    KnNode *n = g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] == old_value) n->inputs[j] = new_value;
    replace_in_attrs(n, old_value, new_value);
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == old_value) g->outputs[i] = new_value;
}

void ir_replace_uses(KnGraph *g, KnValue *old_value, KnValue *new_value) {
  replace_in_graph(g, old_value, new_value);
}
