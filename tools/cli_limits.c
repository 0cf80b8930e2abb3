/* cli_limits.c - the --max-* options every command takes: the resource limits that keep a hostile
 * model in check (defaults in frontend/limits.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"

bool cli_parse_count(const char *s, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  int shift = 0;
  if (*end) {
    const char *units = "KMGT", *u = strchr(units, *end);
    if (!u || end[1]) return false;
    shift = 10 * (int)(u - units + 1);
  }
  if (errno || v == 0 || v > (UINT64_MAX >> shift)) return false;
  *out = (uint64_t)v << shift;
  return true;
}

int cli_take_limit_option(int argc, char **argv, int *i, KnLimits *lim, const char **bad) {
  static const char *const names[] = {"--max-file-bytes", "--max-tensor-elems", "--max-weight-bytes",
                                      "--max-graph-depth", "--max-proto-depth", "--max-nodes"};
  for (int k = 0; k < 6; k++) {
    const char *v = NULL;
    int took = cli_take_value(argc, argv, i, names[k], &v);
    if (took == 0) continue;
    uint64_t n;
    if (took < 0 || !cli_parse_count(v, &n) || (k == 3 || k == 4 ? n > 100000 : n > INT64_MAX))
      return *bad = "--max-* needs a positive count (suffix K, M, G or T allowed; depths up to 100000)", -1;
    if (k == 0) lim->max_file_bytes = (size_t)n;
    else if (k == 1) lim->max_tensor_elems = (int64_t)n;
    else if (k == 2) lim->max_weight_bytes = (size_t)n;
    else if (k == 3) lim->max_graph_depth = (int)n;
    else if (k == 4) lim->max_proto_depth = (int)n;
    else lim->max_nodes = (int64_t)n;
    return 1;
  }
  return 0;
}
