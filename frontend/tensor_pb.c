/* tensor_pb.c - ONNX TensorProto, SequenceProto and OptionalProto files (the test-data .pb
 * files): reading through the importer's TensorProto conversion, and writing them back. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx_internal.h"
#include "frontend/tensor_file.h"
#include "onnx/onnx-data.pb-c.h"

static const bool host_big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;

/* The importer converts TensorProtos inside an OnnxImport whose model owns the arena; a tensor
 * file has no model, so a stand-in model lends it the caller's arena. External data is never
 * followed (dir NULL, and refused before conversion with a clearer message). */
typedef struct PbReader {
  KnModel shim;
  OnnxImport im;
  const char *path;
} PbReader;

static void reader_init(PbReader *r, KnArena *a, const char *path, const KnLimits *lim,
                        KnError *err) {
  memset(r, 0, sizeof *r);
  r->shim.arena = a;
  r->shim.path = path;
  r->im.m = &r->shim;
  r->im.err = err;
  r->im.lim = lim ? *lim : (KnLimits){0};
  fe_limits_resolve(&r->im.lim);
  r->path = path;
}

/* Converts one TensorProto of an unpacked message that is freed right after (so large raw_data
 * buffers move into the arena instead of being copied). */
static KnStatus convert_tensor(PbReader *r, const Onnx__TensorProto *tp, const char *what,
                               KnTensor **out) {
  if (tp->n_external_data ||
      (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
    return kn_fail(r->im.err, KN_ERR_UNSUPPORTED,
                   "%s: external data is not allowed in a tensor file", what);
  if (!tp->has_data_type || tp->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__UNDEFINED)
    return kn_fail(r->im.err, KN_ERR_FORMAT, "%s: not an ONNX TensorProto (no data_type)", what);
  return onnx_tensor_take_proto(&r->im, tp, what, out);
}

KnStatus fe_read_pb_memory(KnArena *a, const void *data, size_t size, const char *path,
                           const KnLimits *lim, KnTensor **out, KnError *err) {
  *out = NULL;
  PbReader r;
  reader_init(&r, a, path, lim, err);
  if (size == 0) return kn_fail(err, KN_ERR_FORMAT, "%s: empty file", path);
  if (size > r.im.lim.max_file_bytes)
    return kn_fail(err, KN_ERR_LIMIT, "%s: %zu bytes exceed the file limit of %zu", path, size,
                   r.im.lim.max_file_bytes);
  /* A TensorProto nests only fixed-depth messages, so protobuf-c's recursion is bounded. */
  Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, data);
  if (!tp)
    return kn_fail(err, KN_ERR_FORMAT,
                   "%s: neither a .npy file nor a parsable ONNX TensorProto protobuf", path);
  KnStatus st = convert_tensor(&r, tp, path, out);
  onnx__tensor_proto__free_unpacked(tp, NULL);
  return st;
}

/* ---- sequences and optionals ------------------------------------------------------------------
 */

/* SequenceProto, MapProto and OptionalProto can nest without bound, and protobuf-c unpacks
 * recursively with no depth limit; this walk over the wire format bounds the nesting first. */
typedef enum SeqMsg { SEQ_LEAF, SEQ_SEQUENCE, SEQ_MAP, SEQ_OPTIONAL } SeqMsg;

static SeqMsg seq_child(SeqMsg parent, uint64_t field) {
  if (parent == SEQ_MAP) return field == 5 ? SEQ_SEQUENCE : SEQ_LEAF;
  if (field == 5) return SEQ_SEQUENCE; /* SequenceProto and OptionalProto number alike */
  if (field == 6) return SEQ_MAP;
  return field == 7 ? SEQ_OPTIONAL : SEQ_LEAF;
}

static KnStatus scan_nesting(const uint8_t *d, size_t pos, size_t end, SeqMsg msg, int depth,
                             const PbReader *r) {
  while (pos < end) {
    uint64_t key = 0, v;
    bool key_ok = onnx_read_varint(d, &pos, end, &key);
    unsigned wire = key_ok ? key & 7 : 7; /* 7: no such wire type, reported below */
    size_t skip = wire == 1 ? 8 : wire == 5 ? 4 : 0;
    if (wire == 0 && onnx_read_varint(d, &pos, end, &v)) continue;
    if (wire == 2 && onnx_read_varint(d, &pos, end, &v) && v <= end - pos) {
      SeqMsg child = seq_child(msg, key >> 3);
      if (child != SEQ_LEAF && depth + 1 > r->im.lim.max_proto_depth)
        return kn_fail(r->im.err, KN_ERR_LIMIT, "%s: sequences nest deeper than %d", r->path,
                       r->im.lim.max_proto_depth);
      KnStatus st = child == SEQ_LEAF ? KN_OK : scan_nesting(d, pos, pos + v, child, depth + 1, r);
      if (st) return st;
      pos += v;
      continue;
    }
    if (skip && skip <= end - pos) {
      pos += skip;
      continue;
    }
    return kn_fail(r->im.err, KN_ERR_FORMAT, "%s: truncated or corrupt protobuf (at byte %zu)",
                   r->path, pos);
  }
  return KN_OK;
}

static KnStatus add_tensor(PbReader *r, KnTensorList *l, const Onnx__TensorProto *tp, int cap) {
  char what[512];
  snprintf(what, sizeof what, "%s: element %d", r->path, l->n_tensors);
  KnTensor *t;
  KnStatus st = convert_tensor(r, tp, what, &t);
  if (st) return st;
  if (l->n_tensors && t->dtype != l->dtype)
    return kn_fail(r->im.err, KN_ERR_INVALID, "%s is %s, but element 0 is %s", what,
                   ir_dtype_name(t->dtype), ir_dtype_name(l->dtype));
  l->dtype = t->dtype;
  if (l->n_tensors >= cap) return kn_fail(r->im.err, KN_ERR_INTERNAL, "%s: list overflow", what);
  l->tensors[l->n_tensors++] = t;
  return KN_OK;
}

static KnStatus alloc_list(PbReader *r, KnTensorList *l, size_t n) {
  if (n > INT_MAX) return kn_fail(r->im.err, KN_ERR_LIMIT, "%s: too many tensors", r->path);
  l->tensors = ir_arena_calloc(r->shim.arena, n ? n : 1, sizeof *l->tensors);
  return l->tensors ? KN_OK : kn_fail(r->im.err, KN_ERR_NOMEM, "%s: out of memory", r->path);
}

static KnStatus from_sequence(PbReader *r, const Onnx__SequenceProto *sp, KnTensorList *l) {
  int32_t et = sp->has_elem_type ? sp->elem_type : 0;
  if (sp->n_sparse_tensor_values || sp->n_sequence_values || sp->n_map_values ||
      sp->n_optional_values ||
      (et != ONNX__SEQUENCE_PROTO__DATA_TYPE__UNDEFINED &&
       et != ONNX__SEQUENCE_PROTO__DATA_TYPE__TENSOR))
    return kn_fail(r->im.err, KN_ERR_UNSUPPORTED,
                   "%s: only sequences of dense tensors are supported (elem_type %d)", r->path,
                   (int)et);
  KnStatus st = alloc_list(r, l, sp->n_tensor_values);
  for (size_t i = 0; !st && i < sp->n_tensor_values; i++)
    st = add_tensor(r, l, sp->tensor_values[i], (int)sp->n_tensor_values);
  return st;
}

static KnStatus from_optional(PbReader *r, const Onnx__OptionalProto *op, KnTensorList *l) {
  if (op->sparse_tensor_value || op->map_value || op->optional_value)
    return kn_fail(r->im.err, KN_ERR_UNSUPPORTED,
                   "%s: only optionals of a tensor or of a sequence of tensors are supported",
                   r->path);
  if (op->tensor_value && op->sequence_value)
    return kn_fail(r->im.err, KN_ERR_INVALID, "%s: the optional holds both a tensor and a sequence",
                   r->path);
  if (op->sequence_value) {
    l->elem = KN_TYPE_SEQUENCE;
    return from_sequence(r, op->sequence_value, l);
  }
  KnStatus st = alloc_list(r, l, op->tensor_value ? 1 : 0);
  if (st || !op->tensor_value) return st;
  l->elem = KN_TYPE_TENSOR;
  return add_tensor(r, l, op->tensor_value, 1);
}

static KnStatus unpack_list(PbReader *r, const void *data, size_t size, KnTypeKind kind,
                            KnTensorList *l) {
  ProtobufCMessage *msg = kind == KN_TYPE_SEQUENCE
                              ? (ProtobufCMessage *)onnx__sequence_proto__unpack(NULL, size, data)
                              : (ProtobufCMessage *)onnx__optional_proto__unpack(NULL, size, data);
  if (!msg)
    return kn_fail(r->im.err, KN_ERR_FORMAT, "%s: not a parsable ONNX %s protobuf", r->path,
                   kind == KN_TYPE_SEQUENCE ? "SequenceProto" : "OptionalProto");
  const char *name = kind == KN_TYPE_SEQUENCE ? ((Onnx__SequenceProto *)msg)->name
                                              : ((Onnx__OptionalProto *)msg)->name;
  KnStatus st = KN_OK;
  if (name && name[0] && !(l->name = ir_arena_strdup(r->shim.arena, name)))
    st = kn_fail(r->im.err, KN_ERR_NOMEM, "%s: out of memory", r->path);
  if (!st)
    st = kind == KN_TYPE_SEQUENCE ? from_sequence(r, (Onnx__SequenceProto *)msg, l)
                                  : from_optional(r, (Onnx__OptionalProto *)msg, l);
  protobuf_c_message_free_unpacked(msg, NULL);
  return st;
}

KnStatus fe_read_sequence_memory(KnArena *a, const void *data, size_t size, const char *path,
                                 KnTypeKind kind, const KnLimits *lim, KnTensorList **out,
                                 KnError *err) {
  *out = NULL;
  PbReader r;
  reader_init(&r, a, path, lim, err);
  if (kind != KN_TYPE_SEQUENCE && kind != KN_TYPE_OPTIONAL)
    return kn_fail(err, KN_ERR_INVALID, "%s: a sequence file holds a sequence or an optional",
                   path);
  if (size > r.im.lim.max_file_bytes)
    return kn_fail(err, KN_ERR_LIMIT, "%s: %zu bytes exceed the file limit of %zu", path, size,
                   r.im.lim.max_file_bytes);
  SeqMsg root = kind == KN_TYPE_SEQUENCE ? SEQ_SEQUENCE : SEQ_OPTIONAL;
  KnStatus st = scan_nesting(data, 0, size, root, 1, &r);
  if (st) return st;
  KnTensorList *l = ir_arena_alloc(a, sizeof *l);
  if (!l) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  *l = (KnTensorList){.kind = kind,
                      .elem = kind == KN_TYPE_SEQUENCE ? KN_TYPE_TENSOR : KN_TYPE_NONE,
                      .dtype = KN_UNDEF};
  /* An empty optional is an empty message: zero bytes are a valid file here. */
  st = unpack_list(&r, size ? data : "", size, kind, l);
  if (st) return st;
  *out = l;
  return KN_OK;
}

/* ---- writing ------------------------------------------------------------------------------- */

/* Proto messages for one write live in a scratch arena; tensor data is pointed to, not copied
 * (except on big-endian hosts, where raw_data needs a little-endian copy). */
typedef struct PbWriter {
  KnArena *s;
  const char *path;
  KnError *err;
} PbWriter;

static void *w_alloc(PbWriter *w, size_t count, size_t size) {
  void *p = ir_arena_calloc(w->s, count ? count : 1, size);
  if (!p) kn_fail(w->err, KN_ERR_NOMEM, "%s: out of memory building the protobuf", w->path);
  return p;
}

static bool raw_data(PbWriter *w, Onnx__TensorProto *p, const KnTensor *t) {
  void *bytes = t->data;
  int unit = t->dtype == KN_C64 ? 4 : t->dtype == KN_C128 ? 8 : ir_dtype_bits(t->dtype) / 8;
  if (host_big_endian && unit > 1) {
    if (!(bytes = w_alloc(w, 1, t->nbytes))) return false;
    memcpy(bytes, t->data, t->nbytes);
    onnx_le_to_host(bytes, t->nbytes / (size_t)unit, unit); /* the swap is its own inverse */
  }
  p->has_raw_data = true;
  p->raw_data = (ProtobufCBinaryData){t->nbytes, bytes};
  return true;
}

static Onnx__TensorProto *tensor_proto(PbWriter *w, const KnTensor *t, const char *name) {
  if (!ir_dtype_is_known((int)t->dtype)) {
    kn_fail(w->err, KN_ERR_INVALID, "%s: tensor has no valid dtype (%d)", w->path, (int)t->dtype);
    return NULL;
  }
  Onnx__TensorProto *p = w_alloc(w, 1, sizeof *p);
  if (!p) return NULL;
  onnx__tensor_proto__init(p);
  p->n_dims = (size_t)t->rank;
  p->dims = t->dims;
  p->has_data_type = true;
  p->data_type = (int32_t)t->dtype;
  p->name = name && name[0] ? (char *)name : NULL;
  if (t->dtype != KN_STRING) return raw_data(w, p, t) ? p : NULL;
  ProtobufCBinaryData *s = w_alloc(w, (size_t)t->numel, sizeof *s);
  if (!s) return NULL;
  const KnBytes *src = t->data;
  for (int64_t i = 0; i < t->numel; i++)
    s[i] = (ProtobufCBinaryData){src[i].len, (uint8_t *)src[i].data};
  p->n_string_data = (size_t)t->numel;
  p->string_data = s;
  return p;
}

/* Packs msg and writes it atomically; protobuf parsers refuse messages over 2 GiB. */
static KnStatus write_message(PbWriter *w, const ProtobufCMessage *msg) {
  size_t size = protobuf_c_message_get_packed_size(msg);
  if (size > (size_t)INT32_MAX)
    return kn_fail(w->err, KN_ERR_LIMIT, "%s: %zu bytes exceed protobuf's 2 GiB message limit",
                   w->path, size);
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) return kn_fail(w->err, KN_ERR_NOMEM, "%s: out of memory for %zu bytes", w->path, size);
  KnStatus st =
      protobuf_c_message_pack(msg, buf) == size
          ? fe_write_file_atomic(w->path, buf, size, w->err)
          : kn_fail(w->err, KN_ERR_INTERNAL, "%s: protobuf packed an unexpected size", w->path);
  free(buf);
  return st;
}

KnStatus fe_write_tensor_pb(const char *path, const KnTensor *t, const char *name, KnError *err) {
  KnError local = {0};
  if (!err) err = &local;
  PbWriter w = {ir_arena_new(), path, err};
  if (!w.s) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  Onnx__TensorProto *p = tensor_proto(&w, t, name ? name : t->name);
  KnStatus st = p ? write_message(&w, &p->base) : err->status;
  ir_arena_free(w.s);
  return st;
}

static Onnx__SequenceProto *sequence_proto(PbWriter *w, const KnTensorList *l) {
  Onnx__SequenceProto *sp = w_alloc(w, 1, sizeof *sp);
  Onnx__TensorProto **ts = w_alloc(w, (size_t)l->n_tensors, sizeof *ts);
  if (!sp || !ts) return NULL;
  onnx__sequence_proto__init(sp);
  sp->has_elem_type = true;
  sp->elem_type = ONNX__SEQUENCE_PROTO__DATA_TYPE__TENSOR;
  for (int i = 0; i < l->n_tensors; i++)
    if (!(ts[i] = tensor_proto(w, l->tensors[i], l->tensors[i]->name))) return NULL;
  sp->n_tensor_values = (size_t)l->n_tensors;
  sp->tensor_values = ts;
  return sp;
}

static Onnx__OptionalProto *optional_proto(PbWriter *w, const KnTensorList *l) {
  Onnx__OptionalProto *op = w_alloc(w, 1, sizeof *op);
  if (!op) return NULL;
  onnx__optional_proto__init(op);
  op->has_elem_type = true;
  if (l->elem == KN_TYPE_SEQUENCE) {
    op->elem_type = ONNX__OPTIONAL_PROTO__DATA_TYPE__SEQUENCE;
    return (op->sequence_value = sequence_proto(w, l)) ? op : NULL;
  }
  if (l->elem == KN_TYPE_TENSOR) {
    op->elem_type = ONNX__OPTIONAL_PROTO__DATA_TYPE__TENSOR;
    return (op->tensor_value = tensor_proto(w, l->tensors[0], l->tensors[0]->name)) ? op : NULL;
  }
  op->elem_type = ONNX__OPTIONAL_PROTO__DATA_TYPE__UNDEFINED;
  return op;
}

static KnStatus check_list(const KnTensorList *l, const char *path, KnError *err) {
  bool ok = l->kind == KN_TYPE_SEQUENCE   ? l->elem == KN_TYPE_TENSOR
            : l->kind == KN_TYPE_OPTIONAL ? (l->elem == KN_TYPE_SEQUENCE ||
                                             (l->elem == KN_TYPE_TENSOR && l->n_tensors == 1) ||
                                             (l->elem == KN_TYPE_NONE && l->n_tensors == 0))
                                          : false;
  if (!ok || l->n_tensors < 0 || (l->n_tensors && !l->tensors))
    return kn_fail(err, KN_ERR_INVALID,
                   "%s: inconsistent tensor list (kind %d, elem %d, %d tensors)", path,
                   (int)l->kind, (int)l->elem, l->n_tensors);
  return KN_OK;
}

KnStatus fe_write_sequence_pb(const char *path, const KnTensorList *l, KnError *err) {
  KnError local = {0};
  if (!err) err = &local;
  KnStatus st = check_list(l, path, err);
  if (st) return st;
  PbWriter w = {ir_arena_new(), path, err};
  if (!w.s) return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  ProtobufCMessage *msg = NULL;
  if (l->kind == KN_TYPE_SEQUENCE) {
    Onnx__SequenceProto *sp = sequence_proto(&w, l);
    if (sp) sp->name = l->name && l->name[0] ? (char *)l->name : NULL, msg = &sp->base;
  } else {
    Onnx__OptionalProto *op = optional_proto(&w, l);
    if (op) op->name = l->name && l->name[0] ? (char *)l->name : NULL, msg = &op->base;
  }
  st = msg ? write_message(&w, msg) : err->status;
  ir_arena_free(w.s);
  return st;
}
