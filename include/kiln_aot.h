/* kiln_aot.h - running models compiled ahead of time by `kiln compile`: the public API of
 * libkiln_rt (C only; needs nothing but libc, libm and OpenMP). The NAME.h that `kiln compile`
 * writes declares NAME_create/NAME_run/NAME_destroy/NAME_info on top of it. */
#ifndef KILN_AOT_H
#define KILN_AOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the KnAotInfo layout a model was compiled against; kn_aot_create refuses others. */
#define KN_AOT_ABI_VERSION 1

/* Status codes: the same numbers as KnStatus in kiln.h. */
enum {
  KN_AOT_OK = 0,
  KN_AOT_ERR_IO = 1,          /* a file could not be opened, read, mapped or written */
  KN_AOT_ERR_FORMAT = 2,      /* bytes that do not parse (a corrupt weights or tensor file) */
  KN_AOT_ERR_INVALID = 3,     /* a wrong input: dtype, shape, a weights file of another model */
  KN_AOT_ERR_UNSUPPORTED = 4, /* valid, but beyond this runtime (another ABI version, say) */
  KN_AOT_ERR_LIMIT = 5,       /* a size limit was exceeded or a size computation overflowed */
  KN_AOT_ERR_NOMEM = 6,       /* an allocation failed */
  KN_AOT_ERR_INTERNAL = 7,    /* a kiln bug */
};

/* Element types: ONNX's TensorProto.DataType codes. */
enum {
  KN_AOT_FLOAT = 1, KN_AOT_UINT8 = 2, KN_AOT_INT8 = 3, KN_AOT_UINT16 = 4, KN_AOT_INT16 = 5,
  KN_AOT_INT32 = 6, KN_AOT_INT64 = 7, KN_AOT_BOOL = 9, KN_AOT_FLOAT16 = 10, KN_AOT_DOUBLE = 11,
  KN_AOT_UINT32 = 12, KN_AOT_UINT64 = 13, KN_AOT_BFLOAT16 = 16,
};

/* One input or output of a compiled model. Every shape is fixed at compile time. */
typedef struct KnAotTensorInfo {
  const char *name;     /* the model's name for it */
  const int64_t *dims;  /* rank entries */
  int64_t numel;        /* product of dims */
  int64_t nbytes;       /* numel * element size: the buffer NAME_run reads or writes */
  int32_t dtype;        /* KN_AOT_FLOAT, ... */
  int32_t rank;
} KnAotTensorInfo;

/* The generated entry function (the ABI in codegen/cg.h): ctx is the runtime's KnRtCtx. */
typedef int32_t (*KnAotEntryFn)(void *ctx, void *const *inputs, void *const *outputs,
                                const void *const *weights, uint8_t *arena);

/* What a compiled model tells the runtime about itself: one constant per model, emitted by
 * `kiln compile` and returned by NAME_info(). Field order and types are the ABI (version
 * KN_AOT_ABI_VERSION): the code generator builds this struct as an LLVM constant. */
typedef struct KnAotInfo {
  uint64_t abi_version;          /* KN_AOT_ABI_VERSION at compile time */
  const char *name;              /* NAME (--name) */
  const char *source;            /* the model file it was compiled from */
  const char *target;            /* target triple, e.g. "x86_64-pc-linux-gnu" */
  const char *cpu;               /* target CPU, e.g. "skylake-avx512" or "generic" */
  KnAotEntryFn entry;
  uint64_t arena_bytes;          /* scratch memory one run needs (64-byte aligned) */
  const KnAotTensorInfo *inputs;
  const KnAotTensorInfo *outputs;
  const void *const *weights;    /* the weights table when weights are embedded; NULL when they
                                    come from a weights file (`kiln compile --weights FILE`) */
  const uint64_t *weight_bytes;  /* n_weights sizes, in the entry's order */
  uint64_t n_weights;
  uint64_t weights_digest;       /* identifies the weights; a weights file must carry the same */
  int32_t n_inputs, n_outputs;
} KnAotInfo;

/* Weights file (`kiln compile --weights FILE`), all integers little-endian u64:
 *   "KILNWTS1" (8 bytes), digest, n_weights, then n_weights pairs (offset, nbytes), then data;
 *   each weight at its offset from the start of the file, offsets multiples of 64.
 * kn_aot_create maps it read-only and checks magic, digest, count, sizes and bounds. */
#define KN_AOT_WEIGHTS_MAGIC "KILNWTS1"

/* A loaded model: its weights, one run context and one arena. Run one instance from one thread at
 * a time; create one instance per thread to run in parallel (embedded weights are shared, a
 * weights file is mapped read-only and so shared by the page cache). */
typedef struct KnAotModel KnAotModel;

/* Loads info's model. weights_path: the weights file when info->weights is NULL (required then),
 * ignored otherwise. Returns KN_AOT_OK and *out, or a status (and *out = NULL) with the reason
 * in kn_aot_last_error(). */
int kn_aot_create(const KnAotInfo *info, const char *weights_path, KnAotModel **out);
/* Runs once. inputs[i] / outputs[i]: buffers of info->inputs[i].nbytes / outputs[i].nbytes in
 * the model's order, dense row-major. Returns KN_AOT_OK or a status with kn_aot_last_error(). */
int kn_aot_run(KnAotModel *model, const void *const *inputs, void *const *outputs);
void kn_aot_destroy(KnAotModel *model); /* NULL is fine */
/* Threads for the model's parallel loops (<= 0: OpenMP's default; 1 at create). */
void kn_aot_set_threads(KnAotModel *model, int threads);
const KnAotInfo *kn_aot_info(const KnAotModel *model);

/* The message of this thread's last failed kn_aot_* call ("" if none): one line naming the file,
 * input or kernel and what was expected. */
const char *kn_aot_last_error(void);
const char *kn_aot_status_name(int status); /* "io", "format", ... */
size_t kn_aot_dtype_size(int32_t dtype);    /* bytes per element; 0 for an unknown code */
const char *kn_aot_dtype_name(int32_t dtype); /* "float32", ...; "?" for an unknown code */

/* ---- tensor files: ONNX TensorProto (.pb) and NumPy (.npy), what `kiln run` reads and writes -- */
typedef struct KnAotTensor {
  char *name;      /* TensorProto name (NULL for .npy or when absent) */
  int32_t dtype;   /* KN_AOT_* */
  int32_t rank;
  int64_t *dims;   /* rank entries */
  void *data;      /* dense row-major, numel * dtype size bytes */
  size_t nbytes;
} KnAotTensor;

/* Reads a .pb TensorProto (raw_data or the typed repeated fields) or a .npy file (chosen by the
 * file's extension); the caller frees *out with kn_aot_tensor_free. */
int kn_aot_read_tensor(const char *path, KnAotTensor *out);
/* Writes a TensorProto .pb (or .npy when path ends in .npy) through a temporary file renamed into
 * place, so a failure never leaves a partial file. name may be NULL. */
int kn_aot_write_tensor(const char *path, const char *name, int32_t dtype, int32_t rank,
                        const int64_t *dims, const void *data);
void kn_aot_tensor_free(KnAotTensor *t);

#ifdef __cplusplus
}
#endif
#endif
