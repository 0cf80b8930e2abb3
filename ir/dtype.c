/* dtype.c - element types: names, sizes and classification, read from dtypes.def. */
#include <string.h>

#include "ir/ir.h"

typedef struct DtypeInfo {
  const char *name;
  int bits;
  bool is_float, is_signed, known;
} DtypeInfo;

static const DtypeInfo dtypes[KN_DTYPE_COUNT] = {
#define DTYPE(e, name, code, bits, fl, sg) [code] = {name, bits, fl, sg, code != 0},
#include "ir/dtypes.def"
#undef DTYPE
};

bool ir_dtype_is_known(int code) { return code > 0 && code < KN_DTYPE_COUNT && dtypes[code].known; }

const char *ir_dtype_name(KnDtype t) {
  if (t == KN_UNDEF) return "undef";
  return ir_dtype_is_known((int)t) ? dtypes[t].name : "?";
}

bool ir_dtype_from_name(const char *name, KnDtype *out) {
  for (int c = 1; c < KN_DTYPE_COUNT; c++) {
    if (dtypes[c].known && strcmp(dtypes[c].name, name) == 0) {
      *out = (KnDtype)c;
      return true;
    }
  }
  return false;
}

int ir_dtype_bits(KnDtype t) { return ir_dtype_is_known((int)t) ? dtypes[t].bits : 0; }
bool ir_dtype_is_float(KnDtype t) { return ir_dtype_is_known((int)t) && dtypes[t].is_float; }
bool ir_dtype_is_signed(KnDtype t) { return ir_dtype_is_known((int)t) && dtypes[t].is_signed; }

bool ir_dtype_is_int(KnDtype t) {
  return ir_dtype_is_known((int)t) && !dtypes[t].is_float && t != KN_BOOL && t != KN_STRING;
}

bool ir_dtype_nbytes(KnDtype t, int64_t numel, size_t *out) {
  int bits = ir_dtype_bits(t);
  if (numel < 0) return false;
  if (bits == 4) {
    *out = (size_t)(numel / 2 + numel % 2);
    return true;
  }
  int64_t bytes;
  if (ir_mul_overflows(numel, bits / 8, &bytes)) return false;
  *out = (size_t)bytes;
  return true;
}

const char *ir_attr_kind_name(KnAttrKind k) {
  static const char *names[] = {"undef",   "float",   "int",     "string",        "tensor",
                                "graph",   "floats",  "ints",    "strings",       "tensors",
                                "graphs",  "sparse_tensor", "sparse_tensors", "type", "types"};
  return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}
