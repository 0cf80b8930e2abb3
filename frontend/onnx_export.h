/* onnx_export.h - private knobs of the ONNX exporter (external data), for the CLI and tests. */
#ifndef KILN_FRONTEND_ONNX_EXPORT_H
#define KILN_FRONTEND_ONNX_EXPORT_H

#include "frontend/frontend.h"

/* Largest ModelProto written as one file: protobuf parsers refuse messages over 2 GiB. */
#define ONNX_EXPORT_MAX_PROTO_BYTES ((int64_t)INT32_MAX)
/* Tensors at least this large go to the external data file when one is needed. */
#define ONNX_EXPORT_EXTERNAL_MIN_BYTES 1024
/* Offsets in the external data file are multiples of this (lets a loader mmap each tensor). */
#define ONNX_EXPORT_EXTERNAL_ALIGN 4096

/* The external data file of an exported model: "<path>.data" beside it. */
#define ONNX_EXPORT_DATA_SUFFIX ".data"

/* onnx_export_file with a choice: force_external moves every tensor of at least
 * ONNX_EXPORT_EXTERNAL_MIN_BYTES into "<basename of path>.data" beside path even when the
 * model would fit in one protobuf message. */
KnStatus onnx_export_file_ex(const KnModel *m, const char *path, bool force_external,
                             KnError *err);

#endif
