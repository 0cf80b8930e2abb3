/* kiln.h - kiln's public C API: status codes, errors, loading and inspecting models. */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible entry point returns a KnStatus and, on failure, fills a KnError whose
 * message names the file, node, op and what was expected. Library code never aborts. */
typedef enum KnStatus {
  KN_OK = 0,
  KN_ERR_IO,          /* a file could not be opened, read, mapped or written */
  KN_ERR_FORMAT,      /* bytes that do not parse: corrupt protobuf, bad .kir syntax, bad .npy */
  KN_ERR_INVALID,     /* parses, but breaks a rule: cycle, undefined input, shape mismatch */
  KN_ERR_UNSUPPORTED, /* valid but beyond kiln: unknown op/domain, newer opset or ir_version */
  KN_ERR_LIMIT,       /* a size or depth limit was exceeded, or a size computation overflowed */
  KN_ERR_NOMEM,       /* an allocation failed */
  KN_ERR_INTERNAL,    /* a kiln bug: an invariant did not hold */
} KnStatus;

typedef struct KnError {
  KnStatus status; /* KN_OK until the first failure */
  char msg[1024];  /* one line, no trailing newline */
} KnError;

/* Short name of a status ("io", "format", ...). */
const char *kn_status_name(KnStatus status);

/* Records a failure in err (which may be NULL) and returns status. The first failure wins:
 * a later kn_fail does not overwrite the message, so the deepest, most precise cause is kept. */
KnStatus kn_fail(KnError *err, KnStatus status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context ("model.onnx: ") to an existing error message. */
void kn_error_prefix(KnError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
