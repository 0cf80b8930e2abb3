/* runner.h - running a model on tensors: specializes a copy of the model for the inputs' shapes
 * (and, where shapes depend on them, the values of small integer inputs), optimizes and compiles
 * it, caches the program by that key, and runs it. What `kiln run`, `kiln check` and the C API
 * use. */
#ifndef KILN_RUNNER_H
#define KILN_RUNNER_H

#include "codegen/codegen.h"
#include "passes/passes.h"

typedef struct KnRunner KnRunner;

typedef struct KnRunOptions {
  int opt_level;              /* -O0..-O3: passes and LLVM pipeline */
  const char *passes;         /* --passes=a,b: overrides the level's pass list (NULL: level's) */
  const char *disabled;       /* --disable-pass=a,b */
  const KnShapeBinding *shapes; /* --shape: compile for these shapes up front */
  int n_shapes;
  const char *cpu, *features; /* NULL: the host's */
  /* Run inputs whose shape contradicts the model's declared one with their own shape instead of
   * refusing them (kiln check: ONNX's backend runner does not enforce declared shapes, and a few
   * of its cases carry data that contradicts them). Off for kiln run and the C API. */
  bool relax_declared_shapes;
  /* --max-arena-bytes: refuse to compile a program whose arena of intermediate values would be
   * larger (0: 16 GiB), so a hostile or mistaken shape fails cleanly instead of exhausting memory. */
  size_t max_arena_bytes;
} KnRunOptions;

/* Installs codegen as the constant folder's evaluator (pass_eval_hook); kn_runner_new does it. */
void kn_runner_install_hooks(void);

/* Takes ownership of m (freed by kn_runner_free). With o->shapes, compiles for them now so the
 * first run does not pay for it. */
KnStatus kn_runner_new(KnModel *m, const KnRunOptions *o, KnRunner **out, KnError *err);
void kn_runner_free(KnRunner *r);

/* Runs once. inputs[i] is the tensor for graph input i (NULL: its initializer default); outputs
 * are allocated in out_arena with the compiled shapes. Checks every input's dtype and shape
 * against the model first. Safe from several threads with distinct contexts. */
KnStatus kn_runner_run(KnRunner *r, KnRtCtx *ctx, KnTensor *const *inputs, KnArena *out_arena,
                       KnTensor **outputs, KnError *err);

/* For ahead-of-time builds: a copy of model specialized for o->shapes (else the declared
 * shapes) and run through o's pass pipeline, exactly what the runner would compile for a first
 * run with those shapes. Fails when the model needs the runner at run time: shapes that depend
 * on input values or on data computed inside the model, control flow, sequences, strings (input
 * values are never baked in).
 * pipeline receives the passes' records. */
KnStatus kn_prepare_static(const KnModel *model, const KnRunOptions *o, KnModel **out, KnPipeline *pipeline,
                           KnError *err);

/* The program the last run used (NULL before any, or when it ran in stages), for reports. */
const KnProgram *kn_runner_last_program(const KnRunner *r);
bool kn_runner_last_staged(const KnRunner *r);
/* The pass records of the program the last run used (what --time-passes reports); NULL before any. */
const KnPipeline *kn_runner_last_pipeline(const KnRunner *r);
const KnModel *kn_runner_model(const KnRunner *r);

#endif
