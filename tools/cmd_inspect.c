/* cmd_inspect.c - `kiln inspect`: a summary of a model, as text or JSON, optionally after
 * binding input shapes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

static const char inspect_usage[] =
    "usage: kiln inspect MODEL [--json] [--shape NAME=D0,D1,...]... [--values]\n"
    "\n"
    "Summarizes MODEL (.onnx or .kir): producer, IR version, opsets, inputs (the graph\n"
    "inputs that are not initializers), outputs, node count and op histogram of the top-level\n"
    "graph, nodes inside subgraphs, parameters (elements and bytes of the top-level\n"
    "initializers) and the bytes the loaded IR takes.\n"
    "\n"
    "options:\n"
    "  --json                  print one JSON object instead of text\n"
    "  --shape NAME=D0,D1,...  bind graph input NAME to these dims and infer shapes again\n"
    "                          (repeatable; NAME= binds a scalar); implies --values\n"
    "  --values                list the type of every graph input and node output, in node order\n"
    CLI_LIMITS_USAGE
    "  -h, --help              show this help\n";

typedef struct InspectArgs {
  const char *model;
  bool json, values;
  KnShapeBinding *binds;
  int n_binds;
  KnLimits limits;
} InspectArgs;

/* Returns CLI_OK, or the exit code to stop with (help printed, or a usage error). */
static int parse_args(int argc, char **argv, KnArena *a, InspectArgs *args, bool *done) {
  args->binds = ir_arena_calloc(a, (size_t)argc, sizeof *args->binds);
  if (!args->binds) return cli_fail("out of memory");
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *value = NULL, *bad = NULL;
    int limit = cli_take_limit_option(argc, argv, &i, &args->limits, &bad);
    int took = limit ? 0 : cli_take_value(argc, argv, &i, "--shape", &value);
    if (cli_is_help(arg)) {
      fputs(inspect_usage, stdout);
      *done = true;
      return CLI_OK;
    } else if (limit) {
      if (limit < 0) return cli_usage_error("inspect", inspect_usage, "%s", bad);
    } else if (took < 0) {
      return cli_usage_error("inspect", inspect_usage, "--shape needs NAME=D0,D1,...");
    } else if (took > 0) {
      if (!cli_parse_binding(a, value, &args->binds[args->n_binds++]))
        return cli_usage_error("inspect", inspect_usage,
                               "bad --shape '%s': expected NAME=D0,D1,... with dims >= 0", value);
      args->values = true;
    } else if (strcmp(arg, "--json") == 0) {
      args->json = true;
    } else if (strcmp(arg, "--values") == 0) {
      args->values = true;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      return cli_usage_error("inspect", inspect_usage, "unknown option '%s'", arg);
    } else if (args->model) {
      return cli_usage_error("inspect", inspect_usage, "more than one model given ('%s')", arg);
    } else {
      args->model = arg;
    }
  }
  if (!args->model) return cli_usage_error("inspect", inspect_usage, "no model given");
  return CLI_OK;
}

/* ---- gathering the summary ---------------------------------------------------------------- */

static int count_subgraph_nodes(const KnGraph *g, int depth) {
  int total = 0;
  for (int i = 0; i < g->n_nodes && depth < 1000; i++) {
    const KnNode *n = g->nodes[i];
    for (int k = 0; k < n->n_attrs; k++) {
      const KnAttr *at = &n->attrs[k];
      if (at->kind == KN_ATTR_GRAPH && at->g)
        total += at->g->n_nodes + count_subgraph_nodes(at->g, depth + 1);
      for (int64_t j = 0; at->kind == KN_ATTR_GRAPHS && j < at->n; j++)
        total += at->graphs[j]->n_nodes + count_subgraph_nodes(at->graphs[j], depth + 1);
    }
  }
  return total;
}

static int compare_ops(const void *pa, const void *pb) {
  const CliOpCount *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return strcmp(a->op, b->op);
}

static bool build_histogram(KnArena *a, const KnGraph *g, CliSummary *s) {
  s->ops = ir_arena_calloc(a, (size_t)g->n_nodes + 1, sizeof *s->ops);
  if (!s->ops) return false;
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    const char *dom = ir_domain_name(n->domain), *op = ir_ops[n->op].name;
    const char *key = *dom ? ir_arena_printf(a, "%s.%s", dom, op) : op;
    if (!key) return false;
    int k = 0;
    while (k < s->n_ops && strcmp(s->ops[k].op, key) != 0) k++;
    if (k == s->n_ops) s->ops[s->n_ops++] = (CliOpCount){key, 0};
    s->ops[k].count++;
  }
  qsort(s->ops, (size_t)s->n_ops, sizeof *s->ops, compare_ops);
  return true;
}

static bool count_params(const KnGraph *g, CliSummary *s) {
  for (int i = 0; i < g->n_inits; i++) {
    const KnTensor *t = g->inits[i]->init;
    if (!t) continue;
    int64_t bytes = (int64_t)t->nbytes;
    for (int64_t k = 0; t->dtype == KN_STRING && k < t->numel; k++)
      bytes += (int64_t)((const KnBytes *)t->data)[k].len;
    if (ir_add_overflows(s->param_count, t->numel, &s->param_count) ||
        ir_add_overflows(s->param_bytes, bytes, &s->param_bytes))
      return false;
  }
  return true;
}

/* ---- text output -------------------------------------------------------------------------- */

static void print_value(const KnValue *v, const char *op) {
  char type[512];
  ir_type_format(&v->type, type, sizeof type);
  if (op) printf("  %-32s %-32s %s\n", v->name, type, op);
  else printf("  %-32s %s\n", v->name, type);
}

static void print_values(const KnGraph *g) {
  printf("values (graph inputs, then node outputs in node order):\n");
  for (int i = 0; i < g->n_inputs; i++)
    if (!g->inputs[i]->init) print_value(g->inputs[i], "(input)");
  for (int i = 0; i < g->n_nodes; i++) {
    const KnNode *n = g->nodes[i];
    for (int k = 0; k < n->n_outputs; k++)
      if (n->outputs[k]) print_value(n->outputs[k], ir_ops[n->op].name);
  }
}

static void print_header(const KnModel *m) {
  const char *pn = m->producer_name ? m->producer_name : "";
  const char *pv = m->producer_version ? m->producer_version : "";
  printf("model:          %s\n", m->path ? m->path : "");
  printf("producer:       %s%s%s\n", *pn ? pn : "(unknown)", *pv ? " " : "", pv);
  printf("ir_version:     %lld\n", (long long)m->ir_version);
  printf("opsets:        ");
  for (int i = 0; i < m->n_opsets; i++)
    printf(" %s %lld%s", *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx",
           (long long)m->opsets[i].version, i + 1 < m->n_opsets ? "," : "");
  printf("\n");
}

static void print_text(const CliSummary *s) {
  const KnGraph *g = s->model->graph;
  int n_in = 0;
  for (int i = 0; i < g->n_inputs; i++) n_in += g->inputs[i]->init == NULL;
  print_header(s->model);
  printf("inputs:         %d (graph inputs that are not initializers)\n", n_in);
  for (int i = 0; i < g->n_inputs; i++)
    if (!g->inputs[i]->init) print_value(g->inputs[i], NULL);
  printf("outputs:        %d\n", g->n_outputs);
  for (int i = 0; i < g->n_outputs; i++) print_value(g->outputs[i], NULL);
  printf("nodes:          %d (top-level graph)\n", s->node_count);
  printf("subgraph nodes: %d\n", s->subgraph_node_count);
  printf("op histogram (top-level graph):\n");
  for (int i = 0; i < s->n_ops; i++) printf("  %-32s %d\n", s->ops[i].op, s->ops[i].count);
  printf("parameters:     %lld (%lld bytes)\n", (long long)s->param_count,
         (long long)s->param_bytes);
  printf("arena bytes:    %zu\n", s->arena_bytes);
  for (int i = 0; s->folded && i < s->folded->n_records; i++) {
    const KnPassRecord *r = &s->folded->records[i];
    printf("after --shape:  %-12s %lld rewrites, nodes %d -> %d\n", r->name, (long long)r->rewrites,
           r->nodes_before, r->nodes_after);
  }
  if (s->values) print_values(g);
}

/* ---- the command -------------------------------------------------------------------------- */

static int inspect_model(const InspectArgs *args, KnArena *a) {
  KnError err = {0};
  KnModel *m = NULL;
  if (fe_load_model(args->model, &args->limits, &m, &err) != KN_OK) return cli_fail_error(&err);
  int rc = CLI_OK;
  CliSummary s = {.model = m, .values = args->values};
  /* With input shapes bound, shape computations become constants: fold them as compilation would. */
  KnPipeline fold = {.only = "fold_shapes,dce"};
  if (args->n_binds > 0) {
    if (ir_specialize(m->graph, args->binds, args->n_binds, &err) == KN_OK)
      pass_run_pipeline(m, &fold, &err);
    if (err.status) {
      kn_error_prefix(&err, "%s: --shape: ", args->model);
      rc = cli_fail_error(&err);
    }
    s.folded = &fold;
  }
  s.node_count = m->graph->n_nodes; /* after --shape, of the folded graph like everything else */
  s.arena_bytes = ir_arena_bytes(m->arena);
  s.subgraph_node_count = count_subgraph_nodes(m->graph, 0);
  if (rc == CLI_OK && (!build_histogram(a, m->graph, &s) || !count_params(m->graph, &s)))
    rc = cli_fail("%s: out of memory or parameter count overflow", args->model);
  if (rc == CLI_OK) {
    if (args->json) rc = cli_print_json(&s);
    else print_text(&s);
  }
  if (rc == CLI_OK && fflush(stdout) != 0) rc = cli_fail("cannot write to standard output");
  ir_model_free(m);
  return rc;
}

int cmd_inspect(int argc, char **argv) {
  KnArena *a = ir_arena_new();
  if (!a) return cli_fail("out of memory");
  InspectArgs args = {0};
  bool done = false;
  int rc = parse_args(argc, argv, a, &args, &done);
  if (rc == CLI_OK && !done) rc = inspect_model(&args, a);
  ir_arena_free(a);
  return rc;
}
