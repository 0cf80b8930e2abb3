/* op_table.c - the operator table built from ops.def, and domain names and opset limits. */
#include <string.h>

#include "ir/infer_fns.h"
#include "ir/ir.h"

#define ONNX KN_DOMAIN_ONNX
#define TRAINING KN_DOMAIN_TRAINING
#define ML KN_DOMAIN_ML
#define MS KN_DOMAIN_MS
#define KILN KN_DOMAIN_KILN
#define VAR IR_VARIADIC

const KnOpInfo ir_ops[KN_OP_COUNT] = {
    [KN_OP_NONE] = {"<none>", KN_DOMAIN_ONNX, 0, 0, 0, 0, 0, NULL},
#define OP(name, dom, since, mi, ma, mo, mx, infer, lower) \
  [KN_OP_##name] = {#name, dom, since, mi, ma, mo, mx, infer},
#include "ir/ops.def"
#undef OP
};

static const struct {
  const char *name;
  int max_opset; /* newest opset whose semantics kiln implements */
} domains[KN_DOMAIN_COUNT] = {
    [KN_DOMAIN_ONNX] = {"", 17},
    [KN_DOMAIN_ML] = {"ai.onnx.ml", 3},
    [KN_DOMAIN_TRAINING] = {"ai.onnx.preview.training", 1},
    [KN_DOMAIN_MS] = {"com.microsoft", 1},
    [KN_DOMAIN_KILN] = {"kiln", 1},
};

const char *ir_domain_name(KnDomain d) { return d < KN_DOMAIN_COUNT ? domains[d].name : "?"; }

int ir_domain_max_opset(KnDomain d) { return d < KN_DOMAIN_COUNT ? domains[d].max_opset : 0; }

bool ir_domain_from_name(const char *name, KnDomain *out) {
  if (strcmp(name, "ai.onnx") == 0) name = "";
  for (int d = 0; d < KN_DOMAIN_COUNT; d++) {
    if (strcmp(name, domains[d].name) == 0) {
      *out = (KnDomain)d;
      return true;
    }
  }
  return false;
}

KnOp ir_op_lookup(KnDomain d, const char *name) {
  for (int op = 1; op < KN_OP_COUNT; op++)
    if (ir_ops[op].domain == d && strcmp(ir_ops[op].name, name) == 0) return (KnOp)op;
  return KN_OP_NONE;
}
