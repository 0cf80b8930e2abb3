/* lower_conv_dw.c - f32 depthwise Conv: not specialised yet, every case falls back. */
#include "codegen/lower_conv_dw.h"

bool cg_try_depthwise(CgKernel *k, const CgDepthwise *d) {
  (void)k, (void)d;
  return false;
}
