/* test_smoke.c - shows how C unit tests use test_util.h, on the error type and checked
 * arithmetic everything else relies on. */
#include <stdint.h>

#include "ir/ir.h"
#include "tests/test_util.h"

/* ONNX's TensorProto.DataType codes (onnx.proto): kiln's dtype enum must equal them. */
static void test_dtype_codes_match_onnx(void) {
  CHECK_INT_EQ(KN_F32, 1);
  CHECK_INT_EQ(KN_I64, 7);
  CHECK_INT_EQ(KN_BOOL, 9);
  CHECK_INT_EQ(KN_F16, 10);
  CHECK_INT_EQ(KN_BF16, 16);
  CHECK_STR_EQ(ir_dtype_name(KN_F32), "f32");
  CHECK_INT_EQ(ir_dtype_bits(KN_F64), 64);
}

static void test_first_failure_wins(void) {
  KnError err = {0};
  CHECK_STATUS(kn_fail(&err, KN_ERR_INVALID, "node '%s': input %d is not defined", "n1", 2),
               KN_ERR_INVALID);
  CHECK_STATUS(kn_fail(&err, KN_ERR_IO, "a later, vaguer failure"), KN_ERR_IO);
  CHECK_INT_EQ(err.status, KN_ERR_INVALID);
  CHECK_STR_EQ(err.msg, "node 'n1': input 2 is not defined");
  kn_error_prefix(&err, "%s: ", "model.onnx");
  CHECK_STR_EQ(err.msg, "model.onnx: node 'n1': input 2 is not defined");
  CHECK_STATUS(kn_fail(NULL, KN_ERR_NOMEM, "no error to fill"), KN_ERR_NOMEM);
}

static void test_overflow_checks(void) {
  int64_t r = 0;
  CHECK(!ir_mul_overflows(3, 4, &r));
  CHECK_INT_EQ(r, 12);
  CHECK(ir_mul_overflows(INT64_MAX / 2 + 1, 2, &r));
  CHECK(ir_mul_overflows(INT64_C(1) << 40, INT64_C(1) << 40, &r));
  CHECK(!ir_add_overflows(INT64_MAX - 1, 1, &r));
  CHECK_INT_EQ(r, INT64_MAX);
  CHECK(ir_add_overflows(INT64_MAX, 1, &r));
}

int main(void) {
  RUN_TEST(test_dtype_codes_match_onnx);
  RUN_TEST(test_first_failure_wins);
  RUN_TEST(test_overflow_checks);
  return test_report();
}
