/* kiln.c - the kiln command-line program: dispatches `kiln <command>` through one table. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"

static const CliCommand commands[] = {
    {"inspect", cmd_inspect, "summarize a model: inputs, outputs, ops, parameters, value types"},
    {"export", cmd_export, "convert a model between .onnx and .kir"},
    {"run", cmd_run, "compile a model for its inputs and run it"},
    {"check", cmd_check, "run an ONNX test case folder and compare with its expected outputs"},
    {"compile", cmd_compile, "build a model ahead of time: object, shared library, archive or program"},
    {"bench", cmd_bench, "time a model: compile time, latency, memory, per-kernel profile, pass ablation"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof *commands))

/* Writes s with control bytes escaped: a message quoting a hostile model's names (or LLVM's
 * multi-line diagnostics) must stay one line and cannot drive the terminal. */
static void put_escaped(const char *s, FILE *f) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '\n') fputs("\\n", f);
    else if (*p == '\t') fputs("\\t", f);
    else if (*p == '\r') fputs("\\r", f);
    else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
    else fputc(*p, f);
  }
}

int cli_fail(const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fputs("kiln: ", stderr);
  put_escaped(msg, stderr);
  fputc('\n', stderr);
  return CLI_FAIL;
}

int cli_fail_error(const KnError *err) {
  return cli_fail("%s", err->status != KN_OK && err->msg[0] ? err->msg : "unknown error");
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kiln %s: ", cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n%s", usage);
  va_end(ap);
  return CLI_USAGE;
}

double cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool cli_is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

int cli_take_value(int argc, char **argv, int *i, const char *name, const char **value) {
  const char *arg = argv[*i];
  size_t len = strlen(name);
  if (strncmp(arg, name, len) != 0) return 0;
  if (arg[len] == '=') {
    *value = arg + len + 1;
    return 1;
  }
  if (arg[len] != '\0') return 0;
  if (*i + 1 >= argc) return -1;
  *value = argv[++*i];
  return 1;
}

/* Parses "NAME=D0,D1,..." into b (dims in the scratch arena). */
bool cli_parse_binding(KnArena *a, const char *spec, KnShapeBinding *b) {
  const char *eq = strrchr(spec, '=');
  if (!eq || eq == spec) return false;
  const char *p = eq + 1;
  int rank = *p ? 1 : 0;
  for (const char *q = p; *q; q++) rank += *q == ',';
  int64_t *dims = ir_arena_calloc(a, (size_t)rank + 1, sizeof *dims);
  char *name = ir_arena_strndup(a, spec, (size_t)(eq - spec));
  if (!dims || !name) return false;
  for (int d = 0; d < rank; d++) {
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno || v < 0 || (*end != ',' && *end != '\0')) return false;
    dims[d] = v;
    p = *end ? end + 1 : end;
  }
  *b = (KnShapeBinding){name, rank, dims};
  return true;
}

static void print_usage(FILE *f) {
  fprintf(f, "usage: kiln <command> [options]\n"
             "       kiln <command> --help\n"
             "       kiln --version\n\n"
             "kiln compiles and runs ONNX models.\n\ncommands:\n");
  for (int i = 0; i < N_COMMANDS; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

static const CliCommand *find_command(const char *name) {
  for (int i = 0; i < N_COMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

/* `kiln help CMD` is the same as `kiln CMD --help`. */
static int run_help(int argc, char **argv) {
  if (argc < 3) {
    print_usage(stdout);
    return CLI_OK;
  }
  const CliCommand *c = find_command(argv[2]);
  if (!c) {
    fprintf(stderr, "kiln: unknown command '%s'\n", argv[2]);
    print_usage(stderr);
    return CLI_USAGE;
  }
  char *sub[] = {(char *)c->name, "--help", NULL};
  return c->fn(2, sub);
}

int main(int argc, char **argv) {
  pass_dump_hook = kir_print_graph; /* --print-ir-after dumps passes' results as .kir */
  if (argc < 2) {
    print_usage(stderr);
    return CLI_USAGE;
  }
  const char *name = argv[1];
  if (cli_is_help(name)) {
    print_usage(stdout);
    return CLI_OK;
  }
  if (strcmp(name, "--version") == 0) {
    printf("kiln %s\n", KILN_VERSION_STRING);
    return CLI_OK;
  }
  if (strcmp(name, "help") == 0) return run_help(argc, argv);
  const CliCommand *c = find_command(name);
  if (!c) {
    fprintf(stderr, "kiln: unknown %s '%s'\n", name[0] == '-' ? "option" : "command", name);
    print_usage(stderr);
    return CLI_USAGE;
  }
  return c->fn(argc - 1, argv + 1);
}
