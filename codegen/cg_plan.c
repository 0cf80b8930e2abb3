/* cg_plan.c - static memory plan: where every value of a graph lives at run time. Intermediate
 * values share one arena; a buffer is reused once the last node reading its value has run
 * (greedy first-fit over offsets, largest-lifetime-agnostic, as TFLite's simple planner). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

#define CG_ALIGN 64
/* The default arena limit: far beyond any real model, but a shape typo or a hostile model fails
 * with a message instead of an allocation the machine cannot back. */

/* n rounded up to CG_ALIGN; false when that overflows. */
static bool align_up(size_t n, size_t *out) {
  if (n > SIZE_MAX - (CG_ALIGN - 1)) return false;
  *out = (n + CG_ALIGN - 1) & ~(size_t)(CG_ALIGN - 1);
  return true;
}

static bool add_size(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }

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

/* First fit: the lowest offset whose gap between live blocks (sorted by offset) holds size.
 * Every live block already fits in size_t (its end was checked when it was placed), so only the
 * sum at + size can overflow; false when it does. */
static bool place(const Block *live, int n_live, size_t size, size_t *out) {
  size_t at = 0;
  for (int i = 0; i < n_live; i++) {
    size_t want;
    if (!add_size(at, size, &want)) return false;
    if (live[i].offset >= want) break;
    size_t end = live[i].offset + live[i].size;
    if (end > at) at = end; /* block sizes are multiples of CG_ALIGN, so end is aligned */
  }
  *out = at;
  return true;
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

/* Places v (a node output) in the arena: its offset in s, and the arena's peak and naive totals. */
static KnStatus place_value(KnValue *v, CgSlot *s, Block *live, int *n_live, CgPlan *plan, KnError *err) {
  KnStatus st = value_bytes(v, &s->nbytes, err);
  if (st != KN_OK) return st;
  size_t size, end;
  if (!align_up(s->nbytes, &size) || !place(live, *n_live, size, &s->offset) ||
      !add_size(s->offset, size, &end) || !add_size(plan->naive_bytes, size, &plan->naive_bytes))
    return kn_fail(err, KN_ERR_LIMIT, "value %s: the arena's size overflows", v->name);
  s->home = CG_HOME_ARENA;
  if (end > plan->arena_bytes) plan->arena_bytes = end;
  insert_sorted(live, n_live, (Block){s->offset, size, (int)v->scratch});
  return KN_OK;
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
      KnStatus st = place_value(v, s, live, &n_live, plan, err);
      if (st != KN_OK) {
        free(live);
        return st;
      }
    }
  }
  free(live);
  return KN_OK;
}

KnStatus cg_plan_graph(KnGraph *g, size_t max_arena_bytes, CgPlan *plan, KnError *err) {
  memset(plan, 0, sizeof *plan);
  ir_graph_renumber(g);
  if (g->n_values < 0) return kn_fail(err, KN_ERR_INTERNAL, "graph has a negative value count");
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
  size_t limit = max_arena_bytes ? max_arena_bytes : CG_DEFAULT_MAX_ARENA;
  if (plan->arena_bytes > limit)
    return kn_fail(err, KN_ERR_LIMIT, "arena of %zu bytes exceeds the limit of %zu (--max-arena-bytes)",
                   plan->arena_bytes, limit);
  return KN_OK;
}

void cg_plan_free(CgPlan *plan) {
  free(plan->slots);
  free(plan->weights);
  memset(plan, 0, sizeof *plan);
}
