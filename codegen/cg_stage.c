/* cg_stage.c - running a model whose shapes depend on data computed inside it. The specialized
 * model is cut before the first node whose output shape is still unknown: the part before it
 * runs as one compiled program; then either a runtime kernel computes that node (NonZero,
 * Compress, ...: ops whose output size is data) or the node starts the rest, whose inputs now
 * include the node's arguments as real tensors (so a Reshape target computed from data becomes
 * a small input the rest binds). The rest is itself a runner with its own cache keyed by those
 * shapes, so each stage compiles once per distinct shape. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_stage.h"

struct CgStaged {
  KnModel *spec;          /* the specialized model the cut was made in (names, the dynamic node) */
  KnRunner *prefix;       /* nodes before the cut; NULL if the cut is at the first node */
  const KnNode *dyn_node; /* the node a runtime kernel computes, or NULL */
  CgDynFn dyn;
  void *dyn_state;        /* what the runtime kernel keeps between runs (subgraph runners) */
  pthread_mutex_t lock;   /* guards dyn_state's creation */
  KnRunner *rest;         /* the nodes after */
  KnRunOptions opt;
};

/* Tensors by value name for one run. */
typedef struct NameMap {
  const char **names;
  KnTensor **tensors;
  int n, cap;
} NameMap;

static bool map_put(KnArena *a, NameMap *m, const char *name, KnTensor *t) {
  if (m->n == m->cap) {
    int cap = m->cap ? m->cap * 2 : 32;
    const char **names = ir_arena_calloc(a, (size_t)cap, sizeof *names);
    KnTensor **ts = ir_arena_calloc(a, (size_t)cap, sizeof *ts);
    if (!names || !ts) return false;
    if (m->n) {
      memcpy(names, m->names, (size_t)m->n * sizeof *names);
      memcpy(ts, m->tensors, (size_t)m->n * sizeof *ts);
    }
    m->names = names, m->tensors = ts, m->cap = cap;
  }
  m->names[m->n] = name;
  m->tensors[m->n++] = t;
  return true;
}

static KnTensor *map_get(const NameMap *m, const char *name) {
  for (int i = m->n - 1; i >= 0; i--)
    if (strcmp(m->names[i], name) == 0) return m->tensors[i];
  return NULL;
}

/* ---- building ------------------------------------------------------------------------------ */
static bool produced_before(const KnValue *v, int split) {
  return v->producer && v->producer->graph->parent == NULL && v->producer->id < split;
}

/* The values made before the cut that the rest or the dynamic node read, as prefix outputs. */
static int prefix_outputs(const KnGraph *g, const KnModel *rest, const KnNode *dyn, int split,
                          KnValue **out) {
  int n = 0;
  for (int i = 0; i < rest->graph->n_inputs; i++) {
    KnValue *v = ir_find_value(g, rest->graph->inputs[i]->name);
    if (v && produced_before(v, split)) out[n++] = v;
  }
  KnValue **captures = NULL;
  int n_captures = 0;
  KnError err = {0};
  if (dyn && ir_node_captures(dyn, g->arena, &captures, &n_captures, &err) != KN_OK) n_captures = 0;
  for (int i = 0; dyn && i < dyn->n_inputs + n_captures; i++) {
    KnValue *v = i < dyn->n_inputs ? dyn->inputs[i] : captures[i - dyn->n_inputs];
    bool seen = false;
    for (int j = 0; j < n; j++) seen |= out[j] == v;
    if (v && !seen && produced_before(v, split)) out[n++] = v;
  }
  return n;
}

KnStatus cg_stage_build(KnModel *spec, int split, const KnRunOptions *o, CgStaged **out,
                        KnError *err) {
  KnGraph *g = spec->graph;
  ir_graph_renumber(g);
  const KnNode *cut = g->nodes[split];
  CgDynFn dyn = cg_dynamic_fn(cut);
  char label[256];
  if (!dyn && !cg_lowering(cut->op))
    return cg_no_kernel_error(cut, "kiln (no kernel, no runtime kernel)", err);
  if (!dyn && split == 0)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "%s: its output shape depends on data kiln cannot see at compile time",
                   cg_node_label(cut, label, sizeof label));
  CgStaged *s = calloc(1, sizeof *s);
  if (!s) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  s->spec = spec;
  /* The parts and the runtime kernels' subgraphs have inputs of their own: --shape (which names
   * the whole model's inputs) does not apply to them; they compile at their first run. */
  s->opt = *o;
  s->opt.shapes = NULL;
  s->opt.n_shapes = 0;
  pthread_mutex_init(&s->lock, NULL);
  s->dyn = dyn;
  s->dyn_node = dyn ? cut : NULL;
  KnStatus st = KN_OK;
  KnModel *rest = ir_model_extract(spec, dyn ? split + 1 : split, g->n_nodes, g->outputs, g->n_outputs, err);
  KnValue **live = calloc((size_t)g->n_values + 1, sizeof *live);
  if (!rest || !live) st = rest ? kn_fail(err, KN_ERR_NOMEM, "out of memory") : err->status;
  int n_live = st == KN_OK ? prefix_outputs(g, rest, s->dyn_node, split, live) : 0;
  if (st == KN_OK && (st = kn_runner_new(rest, &s->opt, &s->rest, err)) == KN_OK) rest = NULL; /* owned */
  if (st == KN_OK && split > 0) {
    KnModel *pre = ir_model_extract(spec, 0, split, live, n_live, err);
    st = pre ? kn_runner_new(pre, &s->opt, &s->prefix, err) : err->status;
    if (st != KN_OK) ir_model_free(pre);
  }
  free(live);
  ir_model_free(rest);
  if (st != KN_OK) {
    s->spec = NULL; /* the caller keeps it */
    cg_stage_free(s);
    return st;
  }
  *out = s;
  return KN_OK;
}

void cg_stage_free(CgStaged *s) {
  if (!s) return;
  kn_runner_free(s->prefix);
  kn_runner_free(s->rest);
  if (s->dyn_node) cg_dynamic_free_state(s->dyn_node, s->dyn_state);
  pthread_mutex_destroy(&s->lock);
  ir_model_free(s->spec);
  free(s);
}

/* A deep copy in arena a of a tensor (strings included) or a boxed sequence or optional. */
static KnTensor *copy_value(KnArena *a, const KnTensor *t, KnError *err) {
  if (t->list) {
    const KnTensorList *l = t->list;
    KnTensorList *c = ir_arena_alloc(a, sizeof *c);
    KnTensor **items = ir_arena_calloc(a, (size_t)l->n_tensors + 1, sizeof *items);
    if (!c || !items) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
    *c = *l;
    c->tensors = items;
    for (int i = 0; i < l->n_tensors; i++)
      if (!(items[i] = copy_value(a, l->tensors[i], err))) return NULL;
    return ir_tensor_box(a, c, err);
  }
  KnTensor *c = ir_tensor_new(a, t->dtype, t->rank, t->dims, err);
  if (!c) return NULL;
  if (t->nbytes) memcpy(c->data, t->data, t->nbytes);
  if (t->dtype == KN_STRING) {
    const KnBytes *src = t->data;
    KnBytes *dst = c->data;
    for (int64_t i = 0; i < t->numel; i++) {
      char *s = ir_arena_strndup(a, src[i].data, src[i].len);
      if (!s) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
      dst[i] = (KnBytes){s, src[i].len};
    }
  }
  c->name = t->name;
  return c;
}

/* ---- running ------------------------------------------------------------------------------- */
/* Runs runner r with its inputs looked up by name in map; its outputs go to arena a and map. */
static KnStatus run_part(KnRunner *r, KnRtCtx *ctx, NameMap *map, KnArena *a, KnTensor **outs,
                         KnError *err) {
  const KnGraph *pg = kn_runner_model(r)->graph;
  KnTensor *in[pg->n_inputs + 1];
  for (int i = 0; i < pg->n_inputs; i++)
    if (!(in[i] = map_get(map, pg->inputs[i]->name)))
      return kn_fail(err, KN_ERR_INTERNAL, "stage input %s was not computed", pg->inputs[i]->name);
  KnStatus st = kn_runner_run(r, ctx, in, a, outs, err);
  for (int i = 0; st == KN_OK && i < pg->n_outputs; i++)
    if (!map_put(a, map, pg->outputs[i]->name, outs[i])) st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
  return st;
}

static KnTensor *find_in_map(void *map, const char *name) { return map_get(map, name); }

static KnStatus run_dynamic(CgStaged *s, KnRtCtx *ctx, NameMap *map, KnArena *a, KnError *err) {
  const KnNode *n = s->dyn_node;
  KnTensor *in[n->n_inputs + 1], *out[n->n_outputs + 1];
  for (int i = 0; i < n->n_inputs; i++) {
    in[i] = NULL;
    if (!n->inputs[i]) continue;
    in[i] = n->inputs[i]->init ? n->inputs[i]->init : map_get(map, n->inputs[i]->name);
    if (!in[i]) return kn_fail(err, KN_ERR_INTERNAL, "input %s of a runtime kernel was not computed", n->inputs[i]->name);
  }
  memset(out, 0, sizeof out);
  CgDynEnv env = {ctx, &s->opt, find_in_map, map, &s->dyn_state};
  pthread_mutex_lock(&s->lock); /* subgraph runners are created on first use */
  KnStatus st = s->dyn(n, in, a, out, &env, err);
  pthread_mutex_unlock(&s->lock);
  for (int i = 0; st == KN_OK && i < n->n_outputs; i++)
    if (n->outputs[i] && out[i] && !map_put(a, map, n->outputs[i]->name, out[i]))
      st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
  return st;
}

KnStatus cg_stage_run(CgStaged *s, KnRtCtx *ctx, KnTensor *const *inputs, KnArena *out_arena,
                      KnTensor **outputs, KnError *err) {
  const KnGraph *g = s->spec->graph;
  KnArena *tmp = ir_arena_new();
  NameMap map = {0};
  KnStatus st = tmp ? KN_OK : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  /* Tensors made between stages (shapes from data: NonZero, Loop outputs, ...) share the
   * intermediate-value budget, checked before each allocation. */
  if (tmp) ir_arena_set_limit(tmp, s->opt.max_arena_bytes ? s->opt.max_arena_bytes : CG_DEFAULT_MAX_ARENA);
  for (int i = 0; st == KN_OK && i < g->n_inputs; i++)
    if (!map_put(tmp, &map, g->inputs[i]->name, inputs[i])) st = kn_fail(err, KN_ERR_NOMEM, "out of memory");
  if (st == KN_OK && s->prefix) {
    int n_out = kn_runner_model(s->prefix)->graph->n_outputs;
    KnTensor **outs = ir_arena_calloc(tmp, (size_t)n_out + 1, sizeof *outs);
    st = outs ? run_part(s->prefix, ctx, &map, tmp, outs, err) : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  if (st == KN_OK && s->dyn) st = run_dynamic(s, ctx, &map, tmp, err);
  if (st == KN_OK) st = run_part(s->rest, ctx, &map, out_arena, outputs, err);
  /* Sequences pass through stages by pointer and may live in tmp: give the caller its own copy. */
  for (int i = 0; st == KN_OK && i < g->n_outputs; i++)
    if (outputs[i] && (outputs[i]->list || outputs[i]->dtype == KN_STRING) &&
        !(outputs[i] = copy_value(out_arena, outputs[i], err)))
      st = err->status;
  ir_arena_free(tmp);
  return st;
}
