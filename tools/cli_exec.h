/* cli_exec.h - private to tools/: options and helpers shared by the commands that compile and run
 * models (`kiln run`, `kiln check`). */
#ifndef KILN_TOOLS_CLI_EXEC_H
#define KILN_TOOLS_CLI_EXEC_H

#include "codegen/runner.h"
#include "tools/cli.h"

#define CLI_MAX_SHAPES 64

typedef struct CliExecOptions {
  KnRunOptions run;
  int threads;                           /* --threads (default 1) */
  KnShapeBinding shapes[CLI_MAX_SHAPES]; /* --shape, pointed to by run.shapes */
  int n_shapes;
  KnLimits limits;                       /* --max-*: what fe_load_model enforces */
} CliExecOptions;

#define CLI_EXEC_USAGE                                                                           \
  "  -O0 .. -O3              optimization level (default -O3)\n"                                 \
  "  --threads N             threads for parallel loops (default 1)\n"                           \
  "  --shape NAME=D0,D1,...  compile for this input shape up front\n"                            \
  "  --passes=A,B            run only these graph passes\n"                                      \
  "  --disable-pass=A,B      skip these graph passes\n"                                      \
  "  --max-arena-bytes N     refuse to compile when intermediate values need more (default 16G)\n" \
  CLI_LIMITS_USAGE

/* Matches one option of CLI_EXEC_USAGE at argv[*i]: 1 taken, 0 not one of them, -1 bad value
 * (*bad says why). */
int cli_take_exec_option(int argc, char **argv, int *i, KnArena *a, CliExecOptions *o,
                         const char **bad);

/* Writes into index the positions of the graph inputs without an initializer; returns how many. */
int cli_feed_inputs(const KnGraph *g, int *index);
/* Reads input_K.pb (or input_K.npy, or NAME.npy) from dir for each fed input K into inputs[]
 * (indexed like g->inputs; entries for inputs with initializers are left alone). */
KnStatus cli_read_input_dir(const KnGraph *g, const char *dir, KnArena *a, KnTensor **inputs,
                            KnError *err);

/* Reads each "NAME=FILE" of specs into inputs[] at NAME's graph input; fails on a name the model
 * does not have. */
KnStatus cli_read_named_inputs(const KnGraph *g, const char *const *specs, int n_specs, KnArena *a,
                               KnTensor **inputs, KnError *err);

/* Reads a value of the given type from path: a tensor file, or for sequence/optional types a
 * SequenceProto/OptionalProto file, boxed (KnTensor.list). */
KnStatus cli_read_value(KnArena *a, const char *path, const KnType *type, KnTensor **out, KnError *err);
/* Writes a value as .pb (a box as SequenceProto/OptionalProto) or, with npy, as .npy (boxes: nothing). */
KnStatus cli_write_value(const char *path, const KnTensor *t, bool npy, KnError *err);

/* ONNX's test data (onnx 1.12) stores bfloat16 tensors as uint16 bit patterns, since numpy has no
 * bfloat16: a u16 tensor where bf16 is wanted is taken as bf16 (same bits). */
void cli_fix_bf16(KnTensor *t, KnDtype want);

/* numpy.testing.assert_allclose: |got - want| <= atol + rtol * |want|, NaN equal to NaN, same
 * dtype and shape. */
typedef struct CliCompare {
  bool ok, shape_mismatch;
  double max_abs, max_rel;
  int64_t bad, first_bad;
} CliCompare;
void cli_compare(const KnTensor *got, const KnTensor *want, double rtol, double atol, CliCompare *c);
void cli_format_shape(const KnTensor *t, char *buf, size_t size); /* "f32[1,3]" */

#endif
