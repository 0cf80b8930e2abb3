/* frontend.h - getting models into and out of kiln's IR: ONNX protobuf, the .kir text format,
 * safetensors weight files, and the loader that picks one by file type. */
#ifndef KILN_FRONTEND_H
#define KILN_FRONTEND_H

#include <stdio.h>

#include "ir/ir.h"

/* Limits that keep hostile files from exhausting the machine. 0 means "use the default". */
typedef struct KnLimits {
  size_t max_file_bytes;      /* model file size (default 4 GiB; external data not counted) */
  int64_t max_tensor_elems;   /* elements in one tensor or shape (default 2^40) */
  size_t max_weight_bytes;    /* all initializers together (default 64 GiB) */
  int max_graph_depth;        /* nested subgraphs (default 64) */
  int max_proto_depth;        /* protobuf message nesting (default 100) */
  int64_t max_nodes;          /* nodes after model-local functions are expanded (default 1M) */
} KnLimits;

/* Fills every zero field of l with its default. */
void fe_limits_resolve(KnLimits *l);

/* ---- ONNX (frontend/onnx_import.c, onnx_external.c, onnx_export.c) ----------------------- */
/* Imports an ONNX ModelProto: every dtype (raw_data and typed fields), initializers (also those
 * listed as inputs), value_info, all attribute kinds, opset imports, model-local functions
 * (inlined), external data (relative to the model's folder, mmapped, never escaping it),
 * ir_version 3..10. Does not run shape inference; fe_load_model does. */
KnStatus onnx_import_file(const char *path, const KnLimits *lim, KnModel **out, KnError *err);
/* path is used in messages; dir is where external data is looked up (NULL: none allowed). */
KnStatus onnx_import_memory(const void *data, size_t size, const char *path, const char *dir,
                            const KnLimits *lim, KnModel **out, KnError *err);
/* Writes m as an ONNX ModelProto that onnx.checker accepts. Writes a temporary file beside
 * path and renames it, so a failure never leaves a partial file. */
KnStatus onnx_export_file(const KnModel *m, const char *path, KnError *err);

/* ---- .kir text format (frontend/kir_parse.c, kir_print.c; syntax in frontend/KIR.md) ------- */
typedef struct KnKirPrintOptions {
  int64_t inline_max_bytes;  /* tensors up to this size print inline (default 256, -1: all) */
  const char *weights_path;  /* safetensors file for larger tensors, relative to the .kir file;
                                NULL: "<kir basename>.safetensors" */
  bool no_weights;           /* dumps (--print-ir-after): print large tensors as a reference only */
} KnKirPrintOptions;

KnStatus kir_parse_file(const char *path, const KnLimits *lim, KnModel **out, KnError *err);
KnStatus kir_parse_string(const char *text, size_t len, const char *path, const char *dir,
                          const KnLimits *lim, KnModel **out, KnError *err);
/* Prints m to f. Tensors larger than inline_max_bytes are printed as references; with a weights
 * path given (kir_print_file does this) they are also written to that safetensors file. */
KnStatus kir_print(FILE *f, const KnModel *m, const KnKirPrintOptions *opt, KnError *err);
KnStatus kir_print_file(const KnModel *m, const char *path, const KnKirPrintOptions *opt,
                        KnError *err);
/* The safetensors file kir_print_file writes beside path (as it would open it). */
KnStatus kir_weights_file(const char *path, const KnKirPrintOptions *opt, char *out, size_t size, KnError *err);
/* Prints one graph (no model header): for dumps after passes. */
KnStatus kir_print_graph(FILE *f, const KnGraph *g, KnError *err);

/* ---- safetensors (frontend/safetensors.c) ------------------------------------------------- */
/* Maps path and fills one KnTensor per entry (data points into the mapping, unmapped when the
 * arena is freed). Rejects lying offsets, overlapping or out-of-file ranges, unknown dtypes. */
KnStatus st_read(KnArena *a, const char *path, KnTensor ***out, int *n_out, KnError *err);
KnStatus st_write(const char *path, KnTensor *const *tensors, int n, KnError *err);

/* ---- loading (frontend/load.c) ------------------------------------------------------------ */
/* Loads .onnx or .kir by content (protobuf vs text), runs shape inference and the verifier. */
KnStatus fe_load_model(const char *path, const KnLimits *lim, KnModel **out, KnError *err);

/* ---- files (frontend/file_util.c) --------------------------------------------------------- */
/* Writes size bytes to path through a temporary file in the same folder and rename(2). */
KnStatus fe_write_file_atomic(const char *path, const void *data, size_t size, KnError *err);
/* The same with the contents written by fill(fd, ctx), which returns false (errno set) on failure. */
KnStatus fe_write_file_atomic_with(const char *path, bool (*fill)(int fd, void *ctx), void *ctx,
                                   KnError *err);
/* Maps a regular file read-only (*data NULL for an empty one); refuses files over lim's
 * max_file_bytes (NULL: defaults). Messages name path. The caller munmaps *size bytes. */
KnStatus fe_map_file(const char *path, const KnLimits *lim, void **data, size_t *size, KnError *err);
/* write(2) until size bytes are out, retrying on EINTR; false on failure (errno set). */
bool fe_write_all(int fd, const void *data, size_t size);
/* Resolves rel against dir, refusing absolute paths, "..", and symlinks that leave dir.
 * Writes the resolved path into out. */
KnStatus fe_resolve_inside(const char *dir, const char *rel, char *out, size_t out_size,
                           KnError *err);

#endif
