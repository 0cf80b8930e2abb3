/* test_util.h - tiny check macros for kiln's C unit tests: each check is counted, a failing one
 * prints file:line and what was expected, and test_report() ends main with the counts. */
#ifndef KILN_TEST_UTIL_H
#define KILN_TEST_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

/* One test program is one translation unit, so file-scope counters are enough. */
static int tu_passed, tu_failed;
static const char *tu_current = "main";

static inline bool tu_check(bool ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline bool tu_check(bool ok, const char *file, int line, const char *fmt, ...) {
  if (ok) {
    tu_passed++;
    return true;
  }
  tu_failed++;
  fprintf(stderr, "%s:%d: FAIL in %s: ", file, line, tu_current);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return false;
}

static inline bool tu_int_eq(long long a, long long e, const char *file, int line, const char *sa,
                             const char *se) {
  return tu_check(a == e, file, line, "%s is %lld, expected %s = %lld", sa, a, se, e);
}

static inline bool tu_str_eq(const char *a, const char *e, const char *file, int line,
                             const char *sa) {
  return tu_check(a && e && strcmp(a, e) == 0, file, line, "%s is \"%s\", expected \"%s\"", sa,
                  a ? a : "(null)", e ? e : "(null)");
}

static inline bool tu_contains(const char *h, const char *n, const char *file, int line,
                               const char *sh) {
  return tu_check(h && n && strstr(h, n) != NULL, file, line, "%s = \"%s\" does not contain \"%s\"",
                  sh, h ? h : "(null)", n ? n : "(null)");
}

static inline bool tu_status(KnStatus got, KnStatus want, const KnError *err, const char *file,
                             int line, const char *call) {
  return tu_check(got == want, file, line, "%s returned %s, expected %s%s%s", call,
                  kn_status_name(got), kn_status_name(want), err ? ": " : "", err ? err->msg : "");
}

/* Each evaluates its arguments once and returns whether the check held. */
#define CHECK(cond) tu_check((cond), __FILE__, __LINE__, "%s", #cond)
#define CHECK_INT_EQ(actual, expected)                                                           \
  tu_int_eq((long long)(actual), (long long)(expected), __FILE__, __LINE__, #actual, #expected)
#define CHECK_STR_EQ(actual, expected) tu_str_eq((actual), (expected), __FILE__, __LINE__, #actual)
#define CHECK_CONTAINS(haystack, needle)                                                         \
  tu_contains((haystack), (needle), __FILE__, __LINE__, #haystack)
/* A KnStatus-returning call that must succeed; a failure prints err's message. */
#define CHECK_OK(call, err) tu_status((call), KN_OK, (err), __FILE__, __LINE__, #call)
/* A KnStatus-returning call that must fail with exactly status. */
#define CHECK_STATUS(call, status) tu_status((call), (status), NULL, __FILE__, __LINE__, #call)

/* Runs one test function, void fn(void); failures inside it name it. */
#define RUN_TEST(fn)                                                                             \
  do {                                                                                           \
    tu_current = #fn;                                                                            \
    fn();                                                                                        \
  } while (0)

/* Prints "N passed, N failed" (checks) and returns main's exit status. */
static inline int test_report(void) {
  printf("%d passed, %d failed\n", tu_passed, tu_failed);
  return tu_failed ? 1 : 0;
}

#endif
