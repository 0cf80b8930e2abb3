/* cli.h - private to tools/: the command table, exit codes, shared option and error helpers. */
#ifndef KILN_TOOLS_CLI_H
#define KILN_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/passes.h"

#ifndef KILN_VERSION_STRING
#define KILN_VERSION_STRING "0.1.0"
#endif

/* Exit codes of every command. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* A subcommand: fn gets argv with argv[0] == the command's name. */
typedef int (*CliCommandFn)(int argc, char **argv);
typedef struct CliCommand {
  const char *name;
  CliCommandFn fn;
  const char *help; /* one line for `kiln --help` */
} CliCommand;

int cmd_inspect(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Fails (one message, CLI_FAIL) when one of outs (NULL entries skipped, at most 16) is the model
 * file or a file its tensors were read from, or two of them are the same file (tools/cli_outputs.c). */
int cli_guard_outputs(const KnModel *m, const char *model_path, const char *const *outs, int n_outs);

/* ---- helpers (tools/kiln.c) ---------------------------------------------------------------- */
/* "kiln: <message>" on stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cli_fail_error(const KnError *err);
/* "kiln <cmd>: <message>" and the command's usage on stderr; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool cli_is_help(const char *arg); /* -h or --help */
double cli_now_ms(void);          /* monotonic clock, for reports */
/* Matches argv[*i] against option name ("--shape", "-o"), with its value as "--shape=V" or
 * as the next argument (then *i advances). Returns 0: not this option, 1: matched with
 * *value set, -1: matched but the value is missing. */
int cli_take_value(int argc, char **argv, int *i, const char *name, const char **value);
/* The --max-* limit options (tools/cli_limits.c) at argv[*i]: 1 taken into lim, 0 not one of
 * them, -1 bad value (*bad says why). */
int cli_take_limit_option(int argc, char **argv, int *i, KnLimits *lim, const char **bad);
/* "123", "64K", "4G": a positive count with an optional binary suffix; false on junk or overflow. */
bool cli_parse_count(const char *s, uint64_t *out);
#define CLI_LIMITS_USAGE                                                                         \
  "  --max-file-bytes N      refuse model files larger than N bytes (default 4G; K/M/G/T)\n"     \
  "  --max-tensor-elems N    refuse tensors or shapes of more than N elements (default 1T)\n"    \
  "  --max-weight-bytes N    refuse models whose initializers exceed N bytes (default 64G)\n"    \
  "  --max-graph-depth N     refuse subgraphs nested deeper than N (default 64)\n"               \
  "  --max-proto-depth N     refuse protobuf messages nested deeper than N (default 100)\n"     \
  "  --max-nodes N           refuse models of more than N nodes, functions expanded (default 1M)\n"

/* Parses "NAME=D0,D1,..." (dims >= 0) into b, strings in arena a. */
bool cli_parse_binding(KnArena *a, const char *spec, KnShapeBinding *b);

/* ---- what `kiln inspect` reports (tools/cmd_inspect.c builds it) ---------------------------- */
typedef struct CliOpCount {
  const char *op; /* op_type, "domain.op_type" outside the default domain */
  int count;
} CliOpCount;

typedef struct CliSummary {
  const KnModel *model;
  int node_count;          /* top-level graph */
  int subgraph_node_count; /* every node inside If/Loop/Scan bodies, at any depth */
  CliOpCount *ops;         /* histogram of the top-level graph, by count desc then name */
  int n_ops;
  int64_t param_count;     /* elements of the top-level initializers */
  int64_t param_bytes;
  size_t arena_bytes;      /* the model's arena after loading */
  bool values;             /* list every value's type */
  const KnPipeline *folded; /* after --shape: the fold_shapes+dce run, else NULL */
} CliSummary;

/* Prints the summary as one JSON object on stdout (tools/json_out.c). */
int cli_print_json(const CliSummary *s);

#endif
