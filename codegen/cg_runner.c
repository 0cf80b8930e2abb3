/* cg_runner.c - specialize, optimize, compile and cache per input shapes; check inputs; run. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_stage.h"

/* Inputs up to this many elements may have their values baked into a specialization when the
 * model's shapes depend on them (a Reshape target or Resize scales given as an input, say). */
#define BIND_MAX_ELEMS 1024

typedef struct CacheEntry {
  KnTensor **key;     /* per input: its shape (and data when bound); arena-owned by the entry */
  bool *bound;        /* per input: whether its values were baked in */
  KnArena *arena;
  KnProgram *prog;    /* the compiled model, or NULL when it runs in stages */
  CgStaged *staged;   /* stages, when a shape depends on data computed inside the model */
  KnPipeline pipeline;
  struct CacheEntry *next;
} CacheEntry;

struct KnRunner {
  KnModel *model;
  KnRunOptions opt;
  pthread_mutex_t lock; /* guards the cache */
  CacheEntry *cache;
  CacheEntry *last;
};

/* ---- checking inputs ---------------------------------------------------------------------- */
static const char *kind_name(KnTypeKind k) {
  return k == KN_TYPE_SEQUENCE ? "a sequence" : k == KN_TYPE_OPTIONAL ? "an optional" : k == KN_TYPE_TENSOR ? "a tensor" : "a value of another kind";
}

static KnStatus check_input(const KnValue *v, const KnTensor *t, bool relax_shape, KnError *err) {
  const KnType *ty = &v->type;
  KnTypeKind got = t->list ? t->list->kind : KN_TYPE_TENSOR;
  if (ty->kind == KN_TYPE_OPTIONAL) return KN_OK; /* a present value stands for an optional holding it */
  if (ty->kind != got)
    return kn_fail(err, KN_ERR_INVALID, "input %s: expected %s, got %s", v->name, kind_name(ty->kind), kind_name(got));
  if (t->list) return KN_OK; /* element types are checked by the ops that open it */
  if (t->dtype != ty->dtype)
    return kn_fail(err, KN_ERR_INVALID, "input %s: expected dtype %s, got %s", v->name,
                   ir_dtype_name(ty->dtype), ir_dtype_name(t->dtype));
  if (relax_shape) return KN_OK;
  if (ty->shape.rank >= 0 && ty->shape.rank != t->rank)
    return kn_fail(err, KN_ERR_INVALID, "input %s: expected rank %d, got %d", v->name, ty->shape.rank, t->rank);
  for (int d = 0; ty->shape.rank >= 0 && d < t->rank; d++) {
    KnDim want = ty->shape.dims[d];
    if (ir_dim_is_const(want) && want.value != t->dims[d])
      return kn_fail(err, KN_ERR_INVALID, "input %s: dim %d must be %lld, got %lld", v->name, d,
                     (long long)want.value, (long long)t->dims[d]);
  }
  return KN_OK;
}

/* ---- the cache ---------------------------------------------------------------------------- */
static bool same_shape(const KnTensor *a, const KnTensor *b) {
  /* Sequences never reach compiled code (their ops run between stages): only the kind matters. */
  if (a->list || b->list) return a->list && b->list && a->list->kind == b->list->kind;
  if (a->rank != b->rank || a->dtype != b->dtype) return false;
  for (int d = 0; d < a->rank; d++)
    if (a->dims[d] != b->dims[d]) return false;
  return true;
}

static bool entry_matches(const CacheEntry *e, int n, KnTensor *const *inputs) {
  for (int i = 0; i < n; i++) {
    if (!same_shape(e->key[i], inputs[i])) return false;
    if (e->bound[i] && memcmp(e->key[i]->data, inputs[i]->data, inputs[i]->nbytes) != 0) return false;
  }
  return true;
}

/* ---- specializing ------------------------------------------------------------------------- */
/* The index of the first node that must start a new stage, or -1: one with an output whose shape
 * is not concrete, or one that only a runtime kernel computes. */
static int first_open_node(const KnGraph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    if ((!cg_lowering(n->op) || cg_node_has_lists(n)) && cg_dynamic_fn(n)) return i;
    for (int j = 0; j < n->n_outputs; j++) {
      const KnValue *v = n->outputs[j];
      if (v && v->type.kind == KN_TYPE_TENSOR && !ir_shape_is_const(&v->type.shape)) return i;
    }
  }
  return -1;
}

/* The first value whose type is not fully concrete, or NULL. */
static const KnValue *first_open_value(const KnGraph *g) {
  for (int i = 0; i < g->n_values; i++) {
    const KnValue *v = g->values[i];
    if (v->type.kind == KN_TYPE_TENSOR && !ir_shape_is_const(&v->type.shape)) return v;
  }
  return NULL;
}

static bool bindable(const KnTensor *t) {
  return !t->list && t->dtype != KN_STRING && t->numel <= BIND_MAX_ELEMS;
}

static KnTensor *copy_tensor(KnArena *a, const KnTensor *t, bool with_data, KnError *err) {
  if (t->list) { /* a cache key keeps only a sequence's kind */
    KnTensorList *l = ir_arena_alloc(a, sizeof *l);
    if (!l) return kn_fail(err, KN_ERR_NOMEM, "out of memory"), NULL;
    l->kind = t->list->kind;
    return ir_tensor_box(a, l, err);
  }
  KnTensor *c = ir_tensor_new(a, t->dtype, t->rank, t->dims, err);
  if (c && with_data && t->nbytes) memcpy(c->data, t->data, t->nbytes);
  return c;
}

/* Replaces input i's uses by a constant holding t's values (the input stays, unused). */
static KnStatus bind_input_values(KnGraph *g, int i, const KnTensor *t, KnError *err) {
  KnTensor *c = copy_tensor(g->arena, t, true, err);
  const char *name = c ? ir_arena_printf(g->arena, "%s_bound", g->inputs[i]->name) : NULL;
  KnValue *v = name ? ir_add_init(g, name, c) : NULL;
  if (!v) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  ir_replace_uses(g, g->inputs[i], v);
  return KN_OK;
}

/* Folds constant subgraphs (shape computations, Range/ConstantOfShape on constants) until every
 * shape is concrete or nothing more folds. */
static KnStatus fold_until_concrete(KnModel *m, KnError *err) {
  for (int round = 0; round < 16 && first_open_value(m->graph); round++) {
    KnPipeline p = {.only = "fold_shapes,fold_constants,dce"};
    KnStatus st = pass_run_pipeline(m, &p, err);
    if (st != KN_OK) return st;
    if ((st = ir_infer_graph(m->graph, err)) != KN_OK) return st;
    bool changed = false;
    for (int i = 0; i < p.n_records; i++) changed |= p.records[i].changed;
    if (!changed) break;
  }
  return KN_OK;
}

/* Specializes clone m for inputs: shapes first; if some shape still depends on data, the values
 * of small inputs are bound as constants too (bound[i] says which; bound NULL: never) and
 * constant subgraphs are folded through codegen. *split is the first node whose output shape is still unknown (the
 * model then runs in stages), or -1. */
static KnStatus specialize(KnModel *m, KnTensor *const *inputs, bool *bound, int *split, KnError *err) {
  KnGraph *g = m->graph;
  KnShapeBinding bind[g->n_inputs + 1];
  int n_bind = 0;
  *split = -1;
  for (int i = 0; i < g->n_inputs; i++)
    if (!inputs[i]->list) bind[n_bind++] = (KnShapeBinding){g->inputs[i]->name, inputs[i]->rank, inputs[i]->dims};
  KnStatus st = ir_specialize(g, bind, n_bind, err);
  if (st == KN_OK && first_open_value(g)) st = fold_until_concrete(m, err);
  if (st != KN_OK || !first_open_value(g) || !bound) {
    ir_graph_renumber(g);
    *split = st == KN_OK ? first_open_node(g) : -1;
    return st;
  }
  bool any = false;
  for (int i = 0; i < g->n_inputs && st == KN_OK; i++) {
    if (!bindable(inputs[i])) continue;
    st = bind_input_values(g, i, inputs[i], err);
    bound[i] = any = true;
  }
  if (any && st == KN_OK) st = ir_infer_graph(g, err);
  if (any && st == KN_OK) st = fold_until_concrete(m, err);
  if (st == KN_OK) {
    ir_graph_renumber(g);
    *split = first_open_node(g);
  }
  return st;
}

/* relax_declared_shapes: inputs whose tensor contradicts the declared shape lose that shape in
 * the copy being specialized, so binding their real shape is not a conflict. */
static void forget_declared_shapes(KnGraph *g, KnTensor *const *inputs) {
  for (int i = 0; i < g->n_inputs; i++) {
    KnShape *s = &g->inputs[i]->type.shape;
    const KnTensor *t = inputs[i];
    if (t->list || g->inputs[i]->type.kind != KN_TYPE_TENSOR || s->rank < 0) continue;
    bool differ = s->rank != t->rank;
    for (int d = 0; !differ && d < s->rank; d++) differ = ir_dim_is_const(s->dims[d]) && s->dims[d].value != t->dims[d];
    if (differ) s->rank = -1, s->dims = NULL;
  }
}

static KnStatus build_entry(KnRunner *r, KnTensor *const *inputs, CacheEntry **out, KnError *err) {
  const KnGraph *g = r->model->graph;
  CacheEntry *e = calloc(1, sizeof *e);
  if (!e || !(e->arena = ir_arena_new())) {
    free(e);
    return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  }
  e->key = ir_arena_calloc(e->arena, (size_t)g->n_inputs + 1, sizeof *e->key);
  e->bound = ir_arena_calloc(e->arena, (size_t)g->n_inputs + 1, sizeof *e->bound);
  KnModel *m = ir_model_clone(r->model, err);
  KnStatus st = e->key && e->bound && m ? KN_OK : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  int split = -1;
  if (st == KN_OK && r->opt.relax_declared_shapes) forget_declared_shapes(m->graph, inputs);
  if (st == KN_OK) st = specialize(m, inputs, e->bound, &split, err);
  for (int i = 0; st == KN_OK && i < g->n_inputs; i++)
    if (!(e->key[i] = copy_tensor(e->arena, inputs[i], e->bound[i], err))) st = err->status;
  if (st == KN_OK && split >= 0) {
    st = cg_stage_build(m, split, &r->opt, &e->staged, err);
    if (st == KN_OK) {
      *out = e;
      return KN_OK;
    }
  }
  e->pipeline = (KnPipeline){.level = r->opt.opt_level, .only = r->opt.passes, .disabled = r->opt.disabled};
  if (st == KN_OK) st = pass_run_pipeline(m, &e->pipeline, err);
  CgOptions co = {.opt_level = r->opt.opt_level, .cpu = r->opt.cpu, .features = r->opt.features,
                  .max_arena_bytes = r->opt.max_arena_bytes};
  if (st == KN_OK) st = cg_compile(m, &co, &e->prog, err);
  if (st != KN_OK) {
    ir_model_free(m);
    ir_arena_free(e->arena);
    free(e);
    return st;
  }
  *out = e;
  return KN_OK;
}

/* Finds or compiles the program for these inputs. */
static KnStatus lookup(KnRunner *r, KnTensor *const *inputs, CacheEntry **out, KnError *err) {
  int n = r->model->graph->n_inputs;
  pthread_mutex_lock(&r->lock);
  KnStatus st = KN_OK;
  CacheEntry *e = r->cache;
  while (e && !entry_matches(e, n, inputs)) e = e->next;
  if (!e && (st = build_entry(r, inputs, &e, err)) == KN_OK) {
    e->next = r->cache;
    r->cache = e;
  }
  if (e) r->last = e;
  pthread_mutex_unlock(&r->lock);
  *out = e;
  return st;
}

/* ---- constant folding's evaluator ---------------------------------------------------------- */
static KnStatus alloc_outputs(const KnGraph *g, size_t limit, KnArena *a, KnTensor **outputs, void **bufs,
                              KnError *err);

/* pass_eval_hook: compiles sub at -O0 (folding runs once; LLVM's optimizer would cost more than
 * it saves) and runs it. */
static KnStatus eval_model(KnModel *sub, KnArena *a, KnTensor **outs, KnError *err) {
  CgOptions co = {.opt_level = 0};
  KnProgram *p;
  KnStatus st = cg_compile(sub, &co, &p, err);
  if (st != KN_OK) {
    ir_model_free(sub);
    return st;
  }
  const KnGraph *g = cg_program_graph(p);
  void *bufs[g->n_outputs + 1];
  KnRtCtx ctx = {.threads = 1};
  st = alloc_outputs(g, CG_DEFAULT_MAX_ARENA, a, outs, bufs, err);
  if (st == KN_OK) st = cg_program_run(p, &ctx, NULL, bufs, err);
  cg_program_free(p);
  return st;
}

static bool can_eval(const KnNode *n) { return cg_lowering(n->op) != NULL; }

static void install_hooks(void) {
  pass_eval_hook = eval_model;
  pass_can_eval_hook = can_eval;
}

/* Once per process: runners are made on several threads at once (a server loading models), and
 * plain stores to the globals there race with each other and with folding on other threads. */
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
void kn_runner_install_hooks(void) { pthread_once(&hooks_once, install_hooks); }

/* Zero-filled inputs with the shapes o->shapes gives (else the declared ones); every input needs
 * one. in[] is indexed like the graph's inputs. */
static KnStatus shape_inputs(const KnGraph *g, const KnRunOptions *o, KnArena *a, KnTensor **in, KnError *err) {
  for (int s = 0; s < o->n_shapes; s++) {
    bool found = false;
    for (int i = 0; i < g->n_inputs; i++) found |= strcmp(g->inputs[i]->name, o->shapes[s].name) == 0;
    if (!found) return kn_fail(err, KN_ERR_INVALID, "--shape %s: the model has no input of that name", o->shapes[s].name);
  }
  for (int i = 0; i < g->n_inputs; i++) {
    const KnValue *v = g->inputs[i];
    const KnShapeBinding *b = NULL;
    for (int s = 0; s < o->n_shapes; s++)
      if (strcmp(o->shapes[s].name, v->name) == 0) b = &o->shapes[s];
    int64_t dims[IR_SYM_DATA_MAX];
    int rank = b ? b->rank : v->type.shape.rank;
    if (v->type.kind != KN_TYPE_TENSOR)
      return kn_fail(err, KN_ERR_UNSUPPORTED, "input %s: a sequence or optional cannot be compiled for a shape up front", v->name);
    if (rank < 0 || rank > IR_SYM_DATA_MAX) return kn_fail(err, KN_ERR_INVALID, "--shape: input %s needs a shape too", v->name);
    for (int d = 0; d < rank; d++) {
      dims[d] = b ? b->dims[d] : v->type.shape.dims[d].value;
      if (dims[d] < 0)
        return kn_fail(err, KN_ERR_INVALID, "--shape: input %s has a dim that is not known; give its shape", v->name);
    }
    if (!(in[i] = ir_tensor_new(a, v->type.dtype, rank, dims, err))) return err->status;
    KnStatus st = check_input(v, in[i], false, err);
    if (st != KN_OK) return st;
  }
  return KN_OK;
}

/* --shape: compiles for the given shapes before the first run, with zero-filled inputs (an input
 * whose values shapes depend on is compiled again when real values come). */
static KnStatus precompile(KnRunner *r, KnError *err) {
  const KnGraph *g = r->model->graph;
  KnArena *a = ir_arena_new();
  KnTensor **in = a ? ir_arena_calloc(a, (size_t)g->n_inputs + 1, sizeof *in) : NULL;
  KnStatus st = in ? shape_inputs(g, &r->opt, a, in, err) : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  CacheEntry *e;
  if (st == KN_OK) st = lookup(r, in, &e, err);
  ir_arena_free(a);
  return st;
}

/* What kn_prepare_static refuses: the model would need the runner at run time. */
static KnStatus check_static(const KnGraph *g, int split, KnError *err) {
  if (split < 0) return KN_OK;
  const KnNode *n = g->nodes[split];
  return kn_fail(err, KN_ERR_UNSUPPORTED,
                 "node %s (%s): its output shape depends on values known only at run time (an input's values "
                 "or data computed in the model), or it runs as a runtime kernel (control flow, sequences, "
                 "strings); an ahead-of-time build needs every shape fixed at compile time",
                 n->name && *n->name ? n->name : "?", ir_ops[n->op].name);
}

/* An input with an initializer (older exporters list every weight as one) becomes a plain
 * initializer: an ahead-of-time build takes its default, as the JIT does when it is not fed. */
static void freeze_defaults(KnGraph *g) {
  int n = 0;
  for (int i = 0; i < g->n_inputs; i++) {
    KnValue *v = g->inputs[i];
    if (v->init) v->is_input = false;
    else g->inputs[n++] = v;
  }
  g->n_inputs = n;
}

KnStatus kn_prepare_static(const KnModel *model, const KnRunOptions *o, KnModel **out, KnPipeline *pipeline,
                           KnError *err) {
  *out = NULL;
  kn_runner_install_hooks();
  const KnGraph *g = model->graph;
  KnArena *a = ir_arena_new();
  KnTensor **in = a ? ir_arena_calloc(a, (size_t)g->n_inputs + 1, sizeof *in) : NULL;
  KnStatus st = in ? KN_OK : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  if (st == KN_OK) st = pass_check_names(o->passes, err);
  if (st == KN_OK) st = pass_check_names(o->disabled, err);
  KnModel *m = st == KN_OK ? ir_model_clone(model, err) : NULL;
  if (st == KN_OK && !m) st = err->status;
  if (st == KN_OK) freeze_defaults(m->graph);
  if (st == KN_OK) st = shape_inputs(m->graph, o, a, in, err);
  int split = -1;
  if (st == KN_OK) st = specialize(m, in, NULL, &split, err);
  if (st == KN_OK) st = check_static(m->graph, split, err);
  *pipeline = (KnPipeline){.level = o->opt_level, .only = o->passes, .disabled = o->disabled};
  if (st == KN_OK) st = pass_run_pipeline(m, pipeline, err);
  ir_arena_free(a);
  if (st != KN_OK) {
    if (m) ir_model_free(m);
    return st;
  }
  *out = m;
  return KN_OK;
}

/* ---- the API ------------------------------------------------------------------------------ */
KnStatus kn_runner_new(KnModel *m, const KnRunOptions *o, KnRunner **out, KnError *err) {
  *out = NULL;
  KnRunner *r = calloc(1, sizeof *r);
  if (!r) return kn_fail(err, KN_ERR_NOMEM, "out of memory");
  r->model = m;
  r->opt = *o;
  kn_runner_install_hooks();
  pthread_mutex_init(&r->lock, NULL);
  KnStatus st = pass_check_names(o->passes, err);
  if (st == KN_OK) st = pass_check_names(o->disabled, err);
  if (st != KN_OK) {
    r->model = NULL;
    kn_runner_free(r);
    return st;
  }
  if (o->n_shapes > 0 && (st = precompile(r, err)) != KN_OK) {
    r->model = NULL; /* the caller keeps the model on failure */
    kn_runner_free(r);
    return st;
  }
  *out = r;
  return KN_OK;
}

void kn_runner_free(KnRunner *r) {
  if (!r) return;
  for (CacheEntry *e = r->cache, *next; e; e = next) {
    next = e->next;
    cg_program_free(e->prog);
    cg_stage_free(e->staged);
    ir_arena_free(e->arena);
    free(e);
  }
  pthread_mutex_destroy(&r->lock);
  ir_model_free(r->model);
  free(r);
}

/* Outputs go to the caller's arena, bounded by the same budget as intermediate values: a shape
 * computed from input data (ConstantOfShape, Expand, Range, ...) can ask for anything. */
static KnStatus check_output_size(const KnValue *v, size_t *total, size_t limit, KnError *err) {
  size_t bytes = 0;
  int64_t numel;
  if (!ir_shape_numel(&v->type.shape, &numel) || !ir_dtype_nbytes(v->type.dtype, numel, &bytes) ||
      bytes > limit - *total)
    return kn_fail(err, KN_ERR_LIMIT, "output %s: its shape needs more than the %zu-byte memory limit (--max-arena-bytes)",
                   v->name, limit);
  *total += bytes;
  return KN_OK;
}

static KnStatus alloc_outputs(const KnGraph *g, size_t limit, KnArena *a, KnTensor **outputs, void **bufs,
                              KnError *err) {
  size_t total = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    const KnValue *v = g->outputs[i];
    if (cg_runtime_only(v)) { /* filled by the caller: a sequence or strings passed through */
      outputs[i] = NULL;
      bufs[i] = NULL;
      continue;
    }
    if (v->type.dtype != KN_STRING && check_output_size(v, &total, limit, err) != KN_OK) return err->status;
    int64_t dims[v->type.shape.rank + 1];
    for (int d = 0; d < v->type.shape.rank; d++) dims[d] = v->type.shape.dims[d].value;
    outputs[i] = ir_tensor_new(a, v->type.dtype, v->type.shape.rank, dims, err);
    if (!outputs[i]) return err->status;
    outputs[i]->name = v->name;
    bufs[i] = outputs[i]->data;
  }
  return KN_OK;
}

KnStatus kn_runner_run(KnRunner *r, KnRtCtx *ctx, KnTensor *const *inputs, KnArena *out_arena,
                       KnTensor **outputs, KnError *err) {
  const KnGraph *g = r->model->graph;
  KnTensor *in[g->n_inputs + 1];
  for (int i = 0; i < g->n_inputs; i++) {
    in[i] = inputs[i] ? inputs[i] : g->inputs[i]->init;
    if (!in[i]) return kn_fail(err, KN_ERR_INVALID, "input %s: no tensor given", g->inputs[i]->name);
    KnStatus st = check_input(g->inputs[i], in[i], r->opt.relax_declared_shapes, err);
    if (st != KN_OK) return st;
  }
  CacheEntry *e;
  KnStatus st = lookup(r, in, &e, err);
  if (st != KN_OK) return st;
  if (e->staged) return cg_stage_run(e->staged, ctx, in, out_arena, outputs, err);
  const KnGraph *cg = cg_program_graph(e->prog);
  void *in_bufs[g->n_inputs + 1], *out_bufs[cg->n_outputs + 1];
  for (int i = 0; i < g->n_inputs; i++) in_bufs[i] = in[i]->data;
  size_t limit = r->opt.max_arena_bytes ? r->opt.max_arena_bytes : CG_DEFAULT_MAX_ARENA;
  if ((st = alloc_outputs(cg, limit, out_arena, outputs, out_bufs, err)) != KN_OK) return st;
  if ((st = cg_program_run(e->prog, ctx, in_bufs, out_bufs, err)) != KN_OK) return st;
  for (int i = 0; i < cg->n_outputs; i++) { /* sequences, strings passed from an input straight through */
    if (!cg_runtime_only(cg->outputs[i])) continue;
    for (int j = 0; j < g->n_inputs; j++)
      if (strcmp(g->inputs[j]->name, cg->outputs[i]->name) == 0) outputs[i] = in[j];
    if (!outputs[i])
      return kn_fail(err, KN_ERR_INTERNAL, "output %s: a sequence or string tensor that no runtime kernel made", cg->outputs[i]->name);
  }
  return KN_OK;
}

/* Another thread may be in lookup(); cache entries live as long as the runner, so only the read
 * of r->last needs the lock. The mutex is not part of the runner's logical state. */
static CacheEntry *last_entry(const KnRunner *r) {
  pthread_mutex_t *lock = (pthread_mutex_t *)&r->lock;
  pthread_mutex_lock(lock);
  CacheEntry *e = r->last;
  pthread_mutex_unlock(lock);
  return e;
}

const KnProgram *kn_runner_last_program(const KnRunner *r) {
  CacheEntry *e = last_entry(r);
  return e ? e->prog : NULL;
}

const KnPipeline *kn_runner_last_pipeline(const KnRunner *r) {
  CacheEntry *e = last_entry(r);
  return e ? &e->pipeline : NULL;
}

bool kn_runner_last_staged(const KnRunner *r) {
  CacheEntry *e = last_entry(r);
  return e && e->staged;
}
const KnModel *kn_runner_model(const KnRunner *r) { return r->model; }
