/* error.c - KnError: recording the first failure and adding context to its message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

const char *kn_status_name(KnStatus status) {
  static const char *names[] = {"ok",          "io",    "format", "invalid",
                                "unsupported", "limit", "nomem",  "internal"};
  return (unsigned)status < sizeof names / sizeof *names ? names[status] : "?";
}

KnStatus kn_fail(KnError *err, KnStatus status, const char *fmt, ...) {
  if (!err || err->status != KN_OK) return status;
  err->status = status;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return status;
}

void kn_error_prefix(KnError *err, const char *fmt, ...) {
  if (!err) return;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t plen = strlen(prefix);
  /* Already carries this context, as "path: ..." or as a position "path:12:7: ...". */
  if (strncmp(err->msg, prefix, plen) == 0) return;
  if (plen > 2 && strcmp(prefix + plen - 2, ": ") == 0 && strncmp(err->msg, prefix, plen - 2) == 0 &&
      err->msg[plen - 2] == ':')
    return;
  /* Truncation of an over-long message is acceptable: keep the prefix and as much as fits. */
  char old[sizeof err->msg];
  memcpy(old, err->msg, sizeof old);
  if (plen >= sizeof err->msg) plen = sizeof err->msg - 1;
  memcpy(err->msg, prefix, plen);
  size_t room = sizeof err->msg - 1 - plen, olen = strlen(old);
  memcpy(err->msg + plen, old, olen < room ? olen : room);
  err->msg[plen + (olen < room ? olen : room)] = 0;
}
