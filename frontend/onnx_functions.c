/* onnx_functions.c - model-local functions (ModelProto.functions): each call node is replaced by
 * the function's body, with its inputs bound to the caller's values, its outputs named as the
 * caller names them, fresh names for its intermediates and the caller's attributes substituted. */
#include <string.h>

#include "frontend/onnx_internal.h"

/* Domain names compare with "ai.onnx" and "" as one. */
static bool same_domain(const char *a, const char *b) {
  if (strcmp(a, "ai.onnx") == 0) a = "";
  if (strcmp(b, "ai.onnx") == 0) b = "";
  return strcmp(a, b) == 0;
}

const Onnx__FunctionProto *onnx_find_function(const OnnxImport *im, const char *domain,
                                              const char *name) {
  for (size_t i = 0; i < im->proto->n_functions; i++) {
    const Onnx__FunctionProto *fn = im->proto->functions[i];
    if (strcmp(onnx_str(fn->name), name) == 0 && same_domain(onnx_str(fn->domain), domain))
      return fn;
  }
  return NULL;
}

int64_t onnx_scope_opset(const OnnxImport *im, const OnnxScope *scope, const char *domain) {
  if (scope->call) {
    const Onnx__FunctionProto *fn = scope->call->fn;
    for (size_t i = 0; i < fn->n_opset_import; i++)
      if (same_domain(onnx_str(fn->opset_import[i]->domain), domain))
        return fn->opset_import[i]->version;
  }
  for (int i = 0; i < im->m->n_opsets; i++)
    if (same_domain(im->m->opsets[i].domain, domain)) return im->m->opsets[i].version;
  return 0;
}

const Onnx__AttributeProto *onnx_call_attr(const OnnxCall *call, const char *ref_name) {
  while (call) {
    const Onnx__AttributeProto *found = NULL;
    for (size_t i = 0; !found && i < call->caller->n_attribute; i++)
      if (strcmp(onnx_str(call->caller->attribute[i]->name), ref_name) == 0)
        found = call->caller->attribute[i];
    /* No default values: onnx 1.12's FunctionProto has no attribute_proto field. */
    if (!found) return NULL;
    if (!onnx_str(found->ref_attr_name)[0]) return found;
    ref_name = found->ref_attr_name; /* the caller is itself inside a function body */
    call = call->outer;
  }
  return NULL;
}

/* Binds each formal input to the caller's value (NULL when the caller omits it). */
static KnStatus bind_inputs(OnnxImport *im, OnnxScope *body, OnnxScope *caller_scope,
                            const Onnx__NodeProto *np, const char *label) {
  const Onnx__FunctionProto *fn = body->call->fn;
  for (size_t k = 0; k < fn->n_input; k++) {
    const char *formal = onnx_str(fn->input[k]);
    const char *actual = k < np->n_input ? onnx_str(np->input[k]) : "";
    KnValue *v = NULL;
    bool found = false;
    if (actual[0]) {
      v = onnx_scope_find(caller_scope, actual, &found);
      if (!found)
        return kn_fail(im->err, KN_ERR_INVALID, "%s: input '%s' is not defined before this node",
                       label, actual);
    }
    if (onnx_map_get(&body->names, formal, NULL))
      return kn_fail(im->err, KN_ERR_INVALID, "%s: function '%s' names input '%s' twice", label,
                     onnx_str(fn->name), formal);
    if (!onnx_map_put(&body->names, formal, v))
      return kn_fail(im->err, KN_ERR_NOMEM, "%s: out of memory", label);
  }
  return KN_OK;
}

/* Every output the caller names must have been produced by the body. */
static KnStatus check_outputs(OnnxImport *im, OnnxScope *caller_scope, const Onnx__NodeProto *np,
                              const Onnx__FunctionProto *fn, int first_node, const char *label) {
  for (size_t k = 0; k < np->n_output; k++) {
    const char *actual = onnx_str(np->output[k]);
    bool found;
    if (!actual[0]) continue;
    KnValue *v = onnx_scope_find(caller_scope, actual, &found);
    if (!found || !v || !v->producer || v->graph != caller_scope->g || v->producer->id < first_node)
      return kn_fail(im->err, KN_ERR_UNSUPPORTED,
                     "%s: output '%s' of function '%s' is not computed by a node of its body",
                     label, onnx_str(fn->output[k]), onnx_str(fn->name));
  }
  return KN_OK;
}

static KnStatus check_call(OnnxImport *im, const OnnxScope *scope, const Onnx__NodeProto *np,
                           const Onnx__FunctionProto *fn, const char *label) {
  for (const OnnxCall *c = scope->call; c; c = c->outer)
    if (c->fn == fn)
      return kn_fail(im->err, KN_ERR_INVALID, "%s: function '%s' calls itself recursively", label,
                     onnx_str(fn->name));
  if (np->n_input > fn->n_input || np->n_output > fn->n_output)
    return kn_fail(im->err, KN_ERR_INVALID,
                   "%s: %zu inputs and %zu outputs, but function '%s' takes %zu and gives %zu",
                   label, np->n_input, np->n_output, onnx_str(fn->name), fn->n_input, fn->n_output);
  return KN_OK;
}

KnStatus onnx_inline_call(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np,
                          const Onnx__FunctionProto *fn, const char *label) {
  KnStatus st = check_call(im, scope, np, fn, label);
  if (st) return st;
  OnnxCall call = {fn, np, scope, scope->call};
  int first_node = scope->g->n_nodes;
  OnnxScope body = {.parent = NULL, .g = scope->g, .call = &call, .depth = scope->depth};
  st = bind_inputs(im, &body, scope, np, label);
  for (size_t i = 0; !st && i < fn->n_node; i++) st = onnx_build_node(im, &body, fn->node[i]);
  if (!st) st = check_outputs(im, scope, np, fn, first_node, label);
  onnx_map_free(&body.names);
  return st;
}
