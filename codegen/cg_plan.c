/* cg_plan.c - static memory plan: where every value of a graph lives at run time. Intermediate
 * values share one arena; a buffer is reused once the last node reading its value has run
 * (greedy first-fit over offsets, largest-lifetime-agnostic, as TFLite's simple planner). */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

#define CG_ALIGN 64

static size_t align_up(size_t n) { return (n + CG_ALIGN - 1) & ~(size_t)(CG_ALIGN - 1); }

/* Records in value->scratch the index of the last node of g that reads it, directly or from a
 * subgraph of that node. Values nothing reads keep their producer's index. */
static void mark_reads_in(const KnGraph *sub, int at, const KnGraph *top);

static void mark_read(KnValue *v, int at, const KnGraph *top) {
  if (v && v->graph == top && v->scratch < at) v->scratch = at;
}

static void mark_reads_in(const KnGraph *sub, int at, const KnGraph *top) {
  for (int i = 0; i < sub->n_nodes; i++) {
    const KnNode *n = sub->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) mark_read(n->inputs[j], at, top);
    for (int a = 0; a < n->n_attrs; a++) {
      const KnAttr *attr = &n->attrs[a];
      if (attr->kind == KN_ATTR_GRAPH) mark_reads_in(attr->g, at, top);
      if (attr->kind == KN_ATTR_GRAPHS)
        for (int64_t g = 0; g < attr->n; g++) mark_reads_in(attr->graphs[g], at, top);
    }
  }
  for (int i = 0; i < sub->n_outputs; i++) mark_read(sub->outputs[i], at, top);
}

static void compute_last_reads(KnGraph *g) {
  for (int i = 0; i < g->n_values; i++) {
    KnValue *v = g->values[i];
    v->scratch = v->producer ? v->producer->id : -1;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) mark_read(n->inputs[j], i, g);
    for (int a = 0; a < n->n_attrs; a++) {
      const KnAttr *attr = &n->attrs[a];
      if (attr->kind == KN_ATTR_GRAPH) mark_reads_in(attr->g, i, g);
      if (attr->kind == KN_ATTR_GRAPHS)
        for (int64_t s = 0; s < attr->n; s++) mark_reads_in(attr->graphs[s], i, g);
    }
  }
}

static KnStatus value_bytes(const KnValue *v, size_t *out, KnError *err) {
  if (v->type.kind != KN_TYPE_TENSOR)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "value %s: only tensors can be compiled, not %s", v->name,
                   v->type.kind == KN_TYPE_SEQUENCE ? "sequences" : "this type");
  int64_t numel;
  if (!ir_shape_numel(&v->type.shape, &numel))
    return kn_fail(err, KN_ERR_INVALID, "value %s: shape is not known at compile time", v->name);
  if (v->type.dtype == KN_STRING)
    return kn_fail(err, KN_ERR_UNSUPPORTED, "value %s: string tensors cannot be compiled", v->name);
  if (!ir_dtype_nbytes(v->type.dtype, numel, out))
    return kn_fail(err, KN_ERR_LIMIT, "value %s: size overflows", v->name);
  return KN_OK;
}

typedef struct Block {
  size_t offset, size;
  int free_after; /* node index of the last read */
} Block;

/* First fit: the lowest offset whose gap between live blocks (sorted by offset) holds size. */
static size_t place(Block *live, int n_live, size_t size) {
  size_t at = 0;
  for (int i = 0; i < n_live; i++) {
    if (live[i].offset >= at + size) break;
    size_t end = live[i].offset + live[i].size;
    if (end > at) at = align_up(end);
  }
  return at;
}

static void insert_sorted(Block *live, int *n_live, Block b) {
  int i = *n_live;
  while (i > 0 && live[i - 1].offset > b.offset) {
    live[i] = live[i - 1];
    i--;
  }
  live[i] = b;
  (*n_live)++;
}

static KnStatus plan_arena(KnGraph *g, CgPlan *plan, KnError *err) {
  Block *live = calloc((size_t)g->n_values + 1, sizeof *live);
  if (!live) return kn_fail(err, KN_ERR_NOMEM, "out of memory planning buffers");
  int n_live = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    int keep = 0; /* drop blocks whose last reader ran before node i */
    for (int j = 0; j < n_live; j++)
      if (live[j].free_after >= i) live[keep++] = live[j];
    n_live = keep;
    const KnNode *n = g->nodes[i];
    for (int o = 0; o < n->n_outputs; o++) {
      KnValue *v = n->outputs[o];
      if (!v) continue;
      CgSlot *s = &plan->slots[v->id];
      if (s->home != CG_HOME_NONE) continue; /* a graph output */
      KnStatus st = value_bytes(v, &s->nbytes, err);
      if (st != KN_OK) {
        free(live);
        return st;
      }
      s->home = CG_HOME_ARENA;
      s->offset = place(live, n_live, s->nbytes);
      plan->naive_bytes += align_up(s->nbytes);
      if (s->offset + align_up(s->nbytes) > plan->arena_bytes) plan->arena_bytes = s->offset + align_up(s->nbytes);
      insert_sorted(live, &n_live, (Block){s->offset, align_up(s->nbytes), (int)v->scratch});
    }
  }
  free(live);
  return KN_OK;
}

KnStatus cg_plan_graph(KnGraph *g, CgPlan *plan, KnError *err) {
  memset(plan, 0, sizeof *plan);
  ir_graph_renumber(g);
  plan->n_slots = g->n_values;
  plan->slots = calloc((size_t)g->n_values + 1, sizeof *plan->slots);
  plan->weights = calloc((size_t)g->n_values + 1, sizeof *plan->weights);
  if (!plan->slots || !plan->weights) return kn_fail(err, KN_ERR_NOMEM, "out of memory planning buffers");
  KnStatus st;
  for (int i = 0; i < g->n_inputs; i++) {
    CgSlot *s = &plan->slots[g->inputs[i]->id];
    if (cg_runtime_only(g->inputs[i])) continue; /* passed through by the runner */
    if ((st = value_bytes(g->inputs[i], &s->nbytes, err)) != KN_OK) return st;
    *s = (CgSlot){CG_HOME_INPUT, i, 0, s->nbytes};
  }
  for (int i = 0; i < g->n_inits; i++) {
    KnValue *v = g->inits[i];
    CgSlot *s = &plan->slots[v->id];
    if (s->home != CG_HOME_NONE) continue; /* an input with a default: the caller passes it */
    if ((st = value_bytes(v, &s->nbytes, err)) != KN_OK) return st;
    *s = (CgSlot){CG_HOME_WEIGHT, plan->n_weights, 0, s->nbytes};
    plan->weights[plan->n_weights++] = v->init;
  }
  /* A node output that is a graph output is written straight into the caller's buffer (the
   * first time it is listed; the entry copies it to any later position). */
  for (int i = 0; i < g->n_outputs; i++) {
    KnValue *v = g->outputs[i];
    CgSlot *s = &plan->slots[v->id];
    if (!v->producer || s->home != CG_HOME_NONE) continue;
    if ((st = value_bytes(v, &s->nbytes, err)) != KN_OK) return st;
    *s = (CgSlot){CG_HOME_OUTPUT, i, 0, s->nbytes};
  }
  compute_last_reads(g);
  if ((st = plan_arena(g, plan, err)) != KN_OK) return st;
  if (plan->arena_bytes < CG_ALIGN) plan->arena_bytes = CG_ALIGN;
  return KN_OK;
}

void cg_plan_free(CgPlan *plan) {
  free(plan->slots);
  free(plan->weights);
  memset(plan, 0, sizeof *plan);
}
