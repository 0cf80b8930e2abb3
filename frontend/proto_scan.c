/* proto_scan.c - a non-recursive walk over a ModelProto's wire format, run before protobuf-c's
 * recursive unpack: protobuf-c has no depth limit, so hostile nesting (a graph attribute holding
 * a graph holding ... 100k deep) would overflow the C stack. The walk bounds the nesting depth
 * and checks that every length-delimited field fits inside its enclosing message. */
#include <stdlib.h>

#include "frontend/onnx_internal.h"

/* The message types through which messages can nest without bound; every other message
 * (tensors' segments, shapes, string pairs, ...) holds at most a fixed depth and is skipped. */
typedef enum ScanMsg {
  SCAN_LEAF = 0,
  SCAN_MODEL,
  SCAN_GRAPH,
  SCAN_NODE,
  SCAN_ATTR,
  SCAN_TENSOR,
  SCAN_SPARSE,
  SCAN_VALUE_INFO,
  SCAN_TYPE,
  SCAN_TYPE_ELEM, /* TypeProto.Sequence and TypeProto.Optional: field 1 is a TypeProto */
  SCAN_TYPE_MAP,
  SCAN_TRAINING,
  SCAN_FUNCTION,
} ScanMsg;

/* The message type of field number f of a parent message (SCAN_LEAF: not descended into). */
static ScanMsg child_msg(ScanMsg parent, uint64_t f) {
  switch (parent) {
  case SCAN_MODEL:
    return f == 7 ? SCAN_GRAPH : f == 20 ? SCAN_TRAINING : f == 25 ? SCAN_FUNCTION : SCAN_LEAF;
  case SCAN_GRAPH:
    if (f == 1) return SCAN_NODE;
    if (f == 5) return SCAN_TENSOR;
    if (f == 15) return SCAN_SPARSE;
    if (f == 11 || f == 12 || f == 13) return SCAN_VALUE_INFO;
    return SCAN_LEAF;
  case SCAN_NODE: return f == 5 ? SCAN_ATTR : SCAN_LEAF;
  case SCAN_ATTR:
    if (f == 5 || f == 10) return SCAN_TENSOR;
    if (f == 6 || f == 11) return SCAN_GRAPH;
    if (f == 22 || f == 23) return SCAN_SPARSE;
    return f == 14 || f == 15 ? SCAN_TYPE : SCAN_LEAF;
  case SCAN_SPARSE: return f == 1 || f == 2 ? SCAN_TENSOR : SCAN_LEAF;
  case SCAN_VALUE_INFO: return f == 2 ? SCAN_TYPE : SCAN_LEAF;
  case SCAN_TYPE:
    if (f == 4 || f == 9) return SCAN_TYPE_ELEM;
    return f == 5 ? SCAN_TYPE_MAP : SCAN_LEAF;
  case SCAN_TYPE_ELEM: return f == 1 ? SCAN_TYPE : SCAN_LEAF;
  case SCAN_TYPE_MAP: return f == 2 ? SCAN_TYPE : SCAN_LEAF;
  case SCAN_TRAINING: return f == 1 || f == 2 ? SCAN_GRAPH : SCAN_LEAF;
  case SCAN_FUNCTION: return f == 7 ? SCAN_NODE : SCAN_LEAF;
  default: return SCAN_LEAF;
  }
}

typedef struct ScanFrame {
  size_t end; /* offset just past this message */
  ScanMsg msg;
} ScanFrame;

bool onnx_read_varint(const uint8_t *d, size_t *pos, size_t end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*pos >= end) return false;
    uint8_t b = d[(*pos)++];
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

static KnStatus corrupt(KnError *err, size_t at) {
  return kn_fail(err, KN_ERR_FORMAT, "truncated or corrupt protobuf (at byte %zu)", at);
}

/* Skips one field's payload of the given wire type; length-delimited ones are handled by the
 * caller. */
static bool skip_scalar(const uint8_t *d, size_t *pos, size_t end, unsigned wire) {
  uint64_t v;
  switch (wire) {
  case 0: return onnx_read_varint(d, pos, end, &v);
  case 1: return end - *pos >= 8 ? (*pos += 8, true) : false;
  case 5: return end - *pos >= 4 ? (*pos += 4, true) : false;
  default: return false; /* groups (3, 4) are not used by ONNX; 6, 7 do not exist */
  }
}

/* Pushes a frame, growing the explicit stack; the depth limit is checked by the caller. */
static bool push(ScanFrame **stack, int *n, int *cap, ScanFrame f) {
  if (*n == *cap) {
    int ncap = *cap ? *cap * 2 : 32;
    ScanFrame *s = realloc(*stack, (size_t)ncap * sizeof *s);
    if (!s) return false;
    *stack = s;
    *cap = ncap;
  }
  (*stack)[(*n)++] = f;
  return true;
}

KnStatus onnx_proto_scan(const uint8_t *d, size_t size, int max_depth, KnError *err) {
  ScanFrame *stack = NULL;
  int n = 0, cap = 0;
  KnStatus st = KN_OK;
  size_t pos = 0;
  if (!push(&stack, &n, &cap, (ScanFrame){size, SCAN_MODEL}))
    return kn_fail(err, KN_ERR_NOMEM, "out of memory scanning protobuf");
  while (n > 0 && st == KN_OK) {
    ScanFrame *top = &stack[n - 1];
    if (pos == top->end) {
      n--;
      continue;
    }
    size_t at = pos;
    uint64_t tag, len;
    if (!onnx_read_varint(d, &pos, top->end, &tag) || (tag >> 3) == 0) {
      st = corrupt(err, at);
      break;
    }
    unsigned wire = (unsigned)(tag & 7);
    if (wire != 2) {
      if (!skip_scalar(d, &pos, top->end, wire)) st = corrupt(err, at);
      continue;
    }
    if (!onnx_read_varint(d, &pos, top->end, &len) || len > top->end - pos) {
      st = corrupt(err, at);
      break;
    }
    ScanMsg child = child_msg(top->msg, tag >> 3);
    if (child == SCAN_LEAF) {
      pos += (size_t)len;
      continue;
    }
    if (n > max_depth) {
      st = kn_fail(err, KN_ERR_LIMIT, "protobuf messages nested deeper than %d (at byte %zu)",
                   max_depth, at);
      break;
    }
    if (!push(&stack, &n, &cap, (ScanFrame){pos + (size_t)len, child}))
      st = kn_fail(err, KN_ERR_NOMEM, "out of memory scanning protobuf");
  }
  free(stack);
  return st;
}
