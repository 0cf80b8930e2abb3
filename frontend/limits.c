/* limits.c - default values for the limits that keep hostile model files in check. */
#include "frontend/frontend.h"

void fe_limits_resolve(KnLimits *l) {
  if (!l->max_file_bytes) l->max_file_bytes = (size_t)4 << 30;
  if (l->max_tensor_elems <= 0) l->max_tensor_elems = (int64_t)1 << 40;
  if (!l->max_weight_bytes) l->max_weight_bytes = (size_t)64 << 30;
  if (l->max_graph_depth <= 0) l->max_graph_depth = 64;
  if (l->max_proto_depth <= 0) l->max_proto_depth = 100;
  if (l->max_nodes <= 0) l->max_nodes = 1000000;
}
