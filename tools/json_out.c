/* json_out.c - `kiln inspect --json`: the model summary as one JSON object (cJSON). */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "tools/cli.h"

/* Dims as ints, symbolic ones by name, unknown ones as "?"; null for an unknown rank. */
static cJSON *shape_json(const KnShape *s) {
  if (s->rank < 0) return cJSON_CreateNull();
  cJSON *arr = cJSON_CreateArray();
  for (int d = 0; arr && d < s->rank; d++) {
    KnDim dim = s->dims[d];
    cJSON *item = ir_dim_is_const(dim) ? cJSON_CreateNumber((double)dim.value)
                                       : cJSON_CreateString(dim.sym ? dim.sym : "?");
    if (!cJSON_AddItemToArray(arr, item)) {
      cJSON_Delete(arr);
      return NULL;
    }
  }
  return arr;
}

/* {name, dtype, shape, type}: for tensors dtype is "f32"; for sequences, maps and optionals it
 * is the whole type ("seq<f32[?]>") and shape is null. op names the producing op when given. */
static cJSON *value_json(const KnValue *v, const char *op) {
  char type[512];
  ir_type_format(&v->type, type, sizeof type);
  bool tensor = v->type.kind == KN_TYPE_TENSOR || v->type.kind == KN_TYPE_SPARSE;
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "name", v->name);
  cJSON_AddStringToObject(o, "dtype", tensor ? ir_dtype_name(v->type.dtype) : type);
  cJSON_AddItemToObject(o, "shape", tensor ? shape_json(&v->type.shape) : cJSON_CreateNull());
  cJSON_AddStringToObject(o, "type", type);
  if (op) cJSON_AddStringToObject(o, "op", op);
  return o;
}

static cJSON *io_json(const KnGraph *g, bool inputs) {
  cJSON *arr = cJSON_CreateArray();
  int n = inputs ? g->n_inputs : g->n_outputs;
  for (int i = 0; arr && i < n; i++) {
    const KnValue *v = inputs ? g->inputs[i] : g->outputs[i];
    if (!inputs || !v->init) cJSON_AddItemToArray(arr, value_json(v, NULL));
  }
  return arr;
}

static cJSON *values_json(const KnGraph *g) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < g->n_inputs; i++)
    if (!g->inputs[i]->init) cJSON_AddItemToArray(arr, value_json(g->inputs[i], "(input)"));
  for (int i = 0; arr && i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    for (int k = 0; k < n->n_outputs; k++)
      if (n->outputs[k]) cJSON_AddItemToArray(arr, value_json(n->outputs[k], ir_ops[n->op].name));
  }
  return arr;
}

static cJSON *opsets_json(const KnModel *m) {
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < m->n_opsets; i++) {
    const char *d = *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx";
    cJSON_AddNumberToObject(o, d, (double)m->opsets[i].version);
  }
  return o;
}

/* [{name, rewrites, nodes_before, nodes_after, wall_ms}] for the passes --shape ran. */
static cJSON *passes_json(const KnPipeline *p) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; arr && i < p->n_records; i++) {
    const KnPassRecord *r = &p->records[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddNumberToObject(o, "rewrites", (double)r->rewrites);
    cJSON_AddNumberToObject(o, "nodes_before", r->nodes_before);
    cJSON_AddNumberToObject(o, "nodes_after", r->nodes_after);
    cJSON_AddNumberToObject(o, "wall_ms", r->wall_ms);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static cJSON *summary_json(const CliSummary *s) {
  const KnModel *m = s->model;
  cJSON *o = cJSON_CreateObject();
  if (!o) return NULL;
  cJSON_AddStringToObject(o, "model", m->path ? m->path : "");
  cJSON_AddStringToObject(o, "producer_name", m->producer_name ? m->producer_name : "");
  cJSON_AddStringToObject(o, "producer_version", m->producer_version ? m->producer_version : "");
  cJSON_AddNumberToObject(o, "ir_version", (double)m->ir_version);
  cJSON_AddItemToObject(o, "opsets", opsets_json(m));
  cJSON_AddItemToObject(o, "inputs", io_json(m->graph, true));
  cJSON_AddItemToObject(o, "outputs", io_json(m->graph, false));
  cJSON_AddNumberToObject(o, "node_count", s->node_count);
  cJSON *hist = cJSON_AddObjectToObject(o, "op_histogram");
  for (int i = 0; hist && i < s->n_ops; i++)
    cJSON_AddNumberToObject(hist, s->ops[i].op, s->ops[i].count);
  cJSON_AddNumberToObject(o, "subgraph_node_count", s->subgraph_node_count);
  cJSON_AddNumberToObject(o, "param_count", (double)s->param_count);
  cJSON_AddNumberToObject(o, "param_bytes", (double)s->param_bytes);
  cJSON_AddNumberToObject(o, "arena_bytes", (double)s->arena_bytes);
  if (s->folded) cJSON_AddItemToObject(o, "passes", passes_json(s->folded));
  if (s->values) cJSON_AddItemToObject(o, "values", values_json(m->graph));
  return o;
}

int cli_print_json(const CliSummary *s) {
  cJSON *o = summary_json(s);
  char *text = o ? cJSON_Print(o) : NULL;
  cJSON_Delete(o);
  if (!text) return cli_fail("out of memory building JSON");
  puts(text);
  cJSON_free(text);
  return CLI_OK;
}
