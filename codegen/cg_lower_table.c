/* cg_lower_table.c - the lowering of each op, read from the `lower` column of ir/ops.def.
 * Lowerings are declared weak: an op family whose lowering file is not written yet resolves to
 * NULL and compiling it fails with a clear "not supported" error naming the op, instead of a
 * link error. The codegen library is linked as objects (CMakeLists.txt) so every lowering that
 * exists is linked in. */
#include "codegen/cg.h"

#define OP(name, dom, since, mi, ma, mo, mx, infer, lower) \
  extern KnStatus lower(CgKernel *k) __attribute__((weak));
#include "ir/ops.def"
#undef OP

CgLowerFn cg_lowering(KnOp op) {
  static const CgLowerFn table[KN_OP_COUNT] = {
#define OP(name, dom, since, mi, ma, mo, mx, infer, lower) [KN_OP_##name] = lower,
#include "ir/ops.def"
#undef OP
  };
  return op > KN_OP_NONE && op < KN_OP_COUNT ? table[op] : NULL;
}
