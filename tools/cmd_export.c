/* cmd_export.c - `kiln export`: converts a model between ONNX and .kir, picked by extension. */
#include <stdio.h>
#include <string.h>

#include "frontend/onnx_export.h"
#include "tools/cli.h"

static const char export_usage[] =
    "usage: kiln export IN -o OUT [--external-data]\n"
    "\n"
    "Loads IN (.onnx or .kir, told apart by content), checks it, and writes it to OUT in the\n"
    "format OUT's extension names: .onnx (ONNX protobuf) or .kir (kiln's text format; large\n"
    "tensors go to a .safetensors file beside it). OUT is written through a temporary file,\n"
    "so a failure never leaves a partial OUT.\n"
    "\n"
    "options:\n"
    "  -o, --output OUT   the file to write\n"
    "  --external-data    .onnx only: put tensors of 1 KiB or more in OUT.data beside OUT\n"
    "                     (done anyway when the model would exceed protobuf's 2 GiB)\n"
    CLI_LIMITS_USAGE
    "  -h, --help         show this help\n";

typedef struct ExportArgs {
  const char *in, *out;
  bool external;
  KnLimits limits;
} ExportArgs;

static int parse_args(int argc, char **argv, ExportArgs *args, bool *done) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *value = NULL, *bad = NULL;
    int limit = cli_take_limit_option(argc, argv, &i, &args->limits, &bad);
    int took = limit ? 0 : cli_take_value(argc, argv, &i, "-o", &value);
    if (took == 0 && !limit) took = cli_take_value(argc, argv, &i, "--output", &value);
    if (cli_is_help(arg)) {
      fputs(export_usage, stdout);
      *done = true;
      return CLI_OK;
    } else if (limit) {
      if (limit < 0) return cli_usage_error("export", export_usage, "%s", bad);
    } else if (took < 0) {
      return cli_usage_error("export", export_usage, "%s needs a file name", arg);
    } else if (took > 0) {
      if (args->out) return cli_usage_error("export", export_usage, "more than one output given");
      args->out = value;
    } else if (strcmp(arg, "--external-data") == 0) {
      args->external = true;
    } else if (arg[0] == '-' && arg[1] != '\0') {
      return cli_usage_error("export", export_usage, "unknown option '%s'", arg);
    } else if (args->in) {
      return cli_usage_error("export", export_usage, "more than one input given ('%s')", arg);
    } else {
      args->in = arg;
    }
  }
  if (!args->in) return cli_usage_error("export", export_usage, "no input model given");
  if (!args->out || !*args->out)
    return cli_usage_error("export", export_usage, "no output given (-o OUT)");
  return CLI_OK;
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n > k && strcmp(s + n - k, suffix) == 0;
}

static int export_model(const ExportArgs *args) {
  bool to_onnx = has_suffix(args->out, ".onnx"), to_kir = has_suffix(args->out, ".kir");
  if (!to_onnx && !to_kir)
    return cli_fail("%s: cannot tell the output format: the name must end in .onnx or .kir",
                    args->out);
  if (args->external && !to_onnx)
    return cli_fail("--external-data applies to .onnx output only");
  KnError err = {0};
  KnModel *m = NULL;
  if (fe_load_model(args->in, &args->limits, &m, &err) != KN_OK) return cli_fail_error(&err);
  /* and the file the exporter writes beside OUT, named as it names it */
  char side[4096];
  KnStatus st = KN_OK;
  if (to_onnx) snprintf(side, sizeof side, "%s" ONNX_EXPORT_DATA_SUFFIX, args->out);
  else st = kir_weights_file(args->out, NULL, side, sizeof side, &err);
  const char *outs[2] = {args->out, side};
  if (st == KN_OK && cli_guard_outputs(m, args->in, outs, 2) != CLI_OK) {
    ir_model_free(m);
    return CLI_FAIL;
  }
  if (st == KN_OK)
    st = to_onnx ? onnx_export_file_ex(m, args->out, args->external, &err) : kir_print_file(m, args->out, NULL, &err);
  ir_model_free(m);
  if (st != KN_OK) {
    kn_error_prefix(&err, "%s: ", args->out);
    return cli_fail_error(&err);
  }
  return CLI_OK;
}

int cmd_export(int argc, char **argv) {
  ExportArgs args = {0};
  bool done = false;
  int rc = parse_args(argc, argv, &args, &done);
  return rc == CLI_OK && !done ? export_model(&args) : rc;
}
