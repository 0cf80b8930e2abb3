/* kir_print.c - writes a model or one graph as .kir text: the model header, graph signatures,
 * constants and one line per node (see frontend/KIR.md). */
#include <string.h>

#include "frontend/kir_internal.h"

#define MULTILINE_INPUTS 3 /* graphs with more inputs list one per line */

static void indent_to(FILE *f, int n) { fprintf(f, "%*s", n, ""); }

static void put_doc(FILE *f, const char *key, const char *doc) {
  if (!doc || !doc[0]) return;
  fprintf(f, " %s=", key);
  kir_put_string(f, doc, strlen(doc));
}

static void put_str(FILE *f, const char *s) { kir_put_string(f, s ? s : "", s ? strlen(s) : 0); }

/* True when v's type is exactly what its initializer's data implies. */
static bool type_matches_tensor(const KnValue *v) {
  const KnType *t = &v->type;
  const KnTensor *x = v->init;
  if (t->kind != KN_TYPE_TENSOR || t->dtype != x->dtype || t->shape.rank != x->rank) return false;
  for (int i = 0; i < x->rank; i++)
    if (t->shape.dims[i].value != x->dims[i]) return false;
  return true;
}

static void put_input(FILE *f, const KnValue *v) {
  kir_put_value_name(f, v->name);
  fputs(": ", f);
  kir_put_type(f, &v->type);
  put_doc(f, "doc", v->doc);
}

static void put_signature(KirPrinter *p, const KnGraph *g, int indent) {
  fputs("graph ", p->f);
  put_str(p->f, g->name);
  fputs(" (", p->f);
  bool multi = g->n_inputs > MULTILINE_INPUTS;
  for (int i = 0; i < g->n_inputs; i++) {
    if (multi) {
      fputs(i ? ",\n" : "\n", p->f);
      indent_to(p->f, indent + 4);
    } else if (i) {
      fputs(", ", p->f);
    }
    put_input(p->f, g->inputs[i]);
  }
  if (multi) {
    fputc('\n', p->f);
    indent_to(p->f, indent);
  }
  fputc(')', p->f);
  put_doc(p->f, "doc", g->doc);
  fputs(" {\n", p->f);
}

static KnStatus put_const(KirPrinter *p, const KnValue *v, int indent) {
  indent_to(p->f, indent);
  kir_put_value_name(p->f, v->name);
  fputs(v->is_input ? " = default " : " = const ", p->f);
  bool name_differs = v->init->name && strcmp(v->init->name, v->name) != 0;
  KnStatus st = kir_put_tensor(p, v->init, name_differs);
  if (!v->is_input && (!type_matches_tensor(v) || (v->doc && v->doc[0]))) {
    fputs(" : ", p->f);
    kir_put_type(p->f, &v->type);
    put_doc(p->f, "doc", v->doc);
  }
  fputc('\n', p->f);
  return st;
}

static void put_outputs_types(FILE *f, const KnNode *n) {
  bool any = false;
  for (int i = 0; i < n->n_outputs; i++) {
    const KnValue *v = n->outputs[i];
    if (v && (v->type.kind != KN_TYPE_NONE || (v->doc && v->doc[0]))) any = true;
  }
  if (!any) return;
  fputs(" :", f);
  bool first = true;
  for (int i = 0; i < n->n_outputs; i++) {
    const KnValue *v = n->outputs[i];
    if (!v) continue;
    fputs(first ? " " : ", ", f);
    first = false;
    kir_put_type(f, &v->type);
    put_doc(f, "doc", v->doc);
  }
}

static void put_value_list(FILE *f, KnValue *const *vals, int n) {
  for (int i = 0; i < n; i++) {
    if (i) fputs(", ", f);
    if (vals[i]) kir_put_value_name(f, vals[i]->name);
    else fputc('_', f);
  }
}

static KnStatus put_node(KirPrinter *p, const KnNode *n, int indent) {
  if (n->op <= KN_OP_NONE || n->op >= KN_OP_COUNT)
    return kn_fail(p->err, KN_ERR_INVALID, "node '%s' has no op", n->name ? n->name : "");
  indent_to(p->f, indent);
  if (n->n_outputs > 0) {
    put_value_list(p->f, n->outputs, n->n_outputs);
    fputs(" = ", p->f);
  }
  const KnOpInfo *op = &ir_ops[n->op];
  if (op->domain != KN_DOMAIN_ONNX) fprintf(p->f, "%s::", ir_domain_name(op->domain));
  fprintf(p->f, "%s(", op->name);
  put_value_list(p->f, n->inputs, n->n_inputs);
  fputc(')', p->f);
  KnStatus st = KN_OK;
  if (n->n_attrs > 0) {
    fputs(" {", p->f);
    for (int i = 0; i < n->n_attrs && !st; i++) {
      if (i) fputs(", ", p->f);
      st = kir_put_attr(p, &n->attrs[i], indent + 2);
    }
    fputc('}', p->f);
  }
  if (n->name && n->name[0]) {
    fputs(" name=", p->f);
    put_str(p->f, n->name);
  }
  put_doc(p->f, "doc", n->doc);
  put_outputs_types(p->f, n);
  fputc('\n', p->f);
  return st;
}

KnStatus kir_put_graph(KirPrinter *p, const KnGraph *g, int indent) {
  put_signature(p, g, indent);
  KnStatus st = KN_OK;
  for (int i = 0; i < g->n_inits && !st; i++) st = put_const(p, g->inits[i], indent + 2);
  for (int i = 0; i < g->n_nodes && !st; i++) st = put_node(p, g->nodes[i], indent + 2);
  indent_to(p->f, indent + 2);
  fputs("return", p->f);
  if (g->n_outputs) fputc(' ', p->f);
  put_value_list(p->f, g->outputs, g->n_outputs);
  fputc('\n', p->f);
  indent_to(p->f, indent);
  fputc('}', p->f);
  return st;
}

static void put_header(FILE *f, const KnModel *m) {
  fprintf(f, "kir %d\nir_version %lld\nproducer ", KIR_VERSION, (long long)m->ir_version);
  put_str(f, m->producer_name);
  fputc(' ', f);
  put_str(f, m->producer_version);
  fputc('\n', f);
  if (m->domain && m->domain[0]) fputs("domain ", f), put_str(f, m->domain), fputc('\n', f);
  if (m->model_version) fprintf(f, "model_version %lld\n", (long long)m->model_version);
  if (m->doc && m->doc[0]) fputs("doc ", f), put_str(f, m->doc), fputc('\n', f);
  for (int i = 0; i < m->n_opsets; i++) {
    fputs("opset ", f);
    put_str(f, m->opsets[i].domain);
    fprintf(f, " %lld\n", (long long)m->opsets[i].version);
  }
  for (int i = 0; i < m->n_metadata; i++) {
    fputs("metadata ", f);
    put_str(f, m->metadata[i].key);
    fputc(' ', f);
    put_str(f, m->metadata[i].value);
    fputc('\n', f);
  }
  fputc('\n', f);
}

static KnStatus finish(KirPrinter *p, KnStatus st) {
  if (!st && (fflush(p->f) != 0 || ferror(p->f)))
    return kn_fail(p->err, KN_ERR_IO, "cannot write .kir output");
  return st;
}

/* Prints with large tensors as references to wopt->file; writes no weights file. */
KnStatus kir_print_planned(FILE *f, const KnModel *m, const KirWeightsOpts *wopt,
                           KirWeights **plan_out, KnError *err) {
  KirWeights *w = NULL;
  KnStatus st = kir_weights_plan(m->graph, wopt, &w, err);
  if (st) return st;
  KirPrinter p = {f, w, err};
  put_header(f, m);
  st = kir_put_graph(&p, m->graph, 0);
  fputc('\n', f);
  st = finish(&p, st);
  if (st || !plan_out) kir_weights_free(w);
  else *plan_out = w;
  return st;
}

KnStatus kir_print(FILE *f, const KnModel *m, const KnKirPrintOptions *opt, KnError *err) {
  KnKirPrintOptions o = opt ? *opt : (KnKirPrintOptions){0};
  KirWeightsOpts w = {o.inline_max_bytes ? o.inline_max_bytes : 256,
                      o.weights_path ? o.weights_path : "weights.safetensors", true, false};
  return kir_print_planned(f, m, &w, NULL, err);
}

KnStatus kir_print_graph(FILE *f, const KnGraph *g, KnError *err) {
  KirWeightsOpts wo = {256, "weights.safetensors", true, false};
  KirWeights *w = NULL;
  KnStatus st = kir_weights_plan(g, &wo, &w, err);
  if (st) return st;
  KirPrinter p = {f, w, err};
  st = kir_put_graph(&p, g, 0);
  fputc('\n', f);
  st = finish(&p, st);
  kir_weights_free(w);
  return st;
}
