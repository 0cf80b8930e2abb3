/* onnx_internal.h - private declarations shared by the ONNX importer's files (not a public API). */
#ifndef KILN_ONNX_INTERNAL_H
#define KILN_ONNX_INTERNAL_H

#include "frontend/frontend.h"
#include "onnx/onnx.pb-c.h"

/* protobuf-c leaves unset proto2 strings NULL. */
static inline const char *onnx_str(const char *s) { return s ? s : ""; }

/* ---- names and scopes (onnx_scope.c) ---------------------------------------------------- */
/* A malloc-backed string -> pointer hash (keys are borrowed, not copied). */
typedef struct OnnxMap {
  const char **keys;
  void **vals;
  size_t cap, used;
} OnnxMap;

bool onnx_map_put(OnnxMap *m, const char *key, void *val); /* false on OOM; replaces */
bool onnx_map_get(const OnnxMap *m, const char *key, void **val);
void onnx_map_free(OnnxMap *m);

typedef struct OnnxScope OnnxScope;

/* One model-local function call being inlined. */
typedef struct OnnxCall {
  const Onnx__FunctionProto *fn;
  const Onnx__NodeProto *caller;
  OnnxScope *caller_scope;      /* where the call node stands; its outputs are defined there */
  const struct OnnxCall *outer; /* the call whose body holds the caller (nested calls), or NULL */
} OnnxCall;

/* Where names resolve while one graph (or one inlined function body) is being built. Outside
 * functions names are the values' own names and resolve through ir_find_value; inside an
 * inlined function body every name is local and renamed, so a map holds source -> value. */
struct OnnxScope {
  struct OnnxScope *parent; /* enclosing scope whose names are visible; NULL at a root */
  KnGraph *g;               /* graph that receives this scope's nodes and values */
  const OnnxCall *call;     /* the function call being inlined, or NULL */
  OnnxMap names;            /* used only when call != NULL */
  int depth;                /* subgraph nesting, for lim->max_graph_depth */
};

/* ---- one import ------------------------------------------------------------------------------ */
typedef struct OnnxExtFile {
  char *path;        /* resolved path (malloc) */
  const char *bytes; /* whole-file read-only mapping, NULL for an empty file */
  size_t size;
} OnnxExtFile;

typedef struct OnnxImport {
  KnModel *m;
  const Onnx__ModelProto *proto;
  KnLimits lim;    /* resolved */
  const char *dir; /* folder for external data, NULL: none allowed */
  KnError *err;
  int64_t weight_bytes; /* all materialized tensors so far, against lim.max_weight_bytes */
  OnnxExtFile *ext;     /* mapped external files (malloc), each unmapped by the arena */
  int n_ext, cap_ext;
  OnnxMap reserved; /* every value name of the model's graphs: fresh names avoid them */
  bool reserved_ready;
  int64_t fresh_id;
  int64_t nodes;    /* made so far, every graph and inlined function, against lim.max_nodes */
} OnnxImport;

/* Looks up a value by source name; *found is false when the name is not visible. A visible
 * name may map to NULL: a function input the caller omitted. */
KnValue *onnx_scope_find(const OnnxScope *s, const char *name, bool *found);
/* Defines a source name (a fresh actual name inside functions); fails on a duplicate. */
KnValue *onnx_scope_define(OnnxImport *im, OnnxScope *s, const char *name, const char *what);
/* "node 'name' (Op)", "node (Op) producing 'y'", plus the function being inlined. */
const char *onnx_node_label(const OnnxScope *s, const Onnx__NodeProto *np, char *buf, size_t n);
/* A value name unused anywhere in the model, derived from hint. */
const char *onnx_fresh_name(OnnxImport *im, const char *hint);

/* ---- graphs and nodes (onnx_import.c) ------------------------------------------------------- */
/* Builds gp's contents into scope->g (inputs, initializers, nodes, outputs, value_info). */
KnStatus onnx_build_graph(OnnxImport *im, OnnxScope *scope, const Onnx__GraphProto *gp);
/* Adds the node(s) for one NodeProto to scope->g (a function call expands into its body). */
KnStatus onnx_build_node(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np);

/* ---- attributes (onnx_attrs.c) ----------------------------------------------------------------
 */
/* Converts np's attributes onto node n (substituting ref_attr_name inside functions). */
KnStatus onnx_build_attrs(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np, KnNode *n,
                          const char *label);

/* ---- tensors (onnx_tensor.c) ----------------------------------------------------------------- */
/* Converts a TensorProto (inline or external data); what names it in messages. */
KnStatus onnx_tensor_from_proto(OnnxImport *im, const Onnx__TensorProto *tp, const char *what,
                                KnTensor **out);
/* The same for a proto converted only once: large raw_data moves into the model, not copied. */
KnStatus onnx_tensor_take_proto(OnnxImport *im, const Onnx__TensorProto *tp, const char *what,
                                KnTensor **out);
KnStatus onnx_sparse_from_proto(OnnxImport *im, const Onnx__SparseTensorProto *sp, const char *what,
                                KnSparseTensor **out);
/* Scatters a sparse tensor into a dense one (initializers are consumed dense). */
KnStatus onnx_sparse_densify(OnnxImport *im, const KnSparseTensor *sp, const char *what,
                             KnTensor **out);
/* Checks dims (>= 0, product within limits); sets *numel. */
KnStatus onnx_check_dims(OnnxImport *im, const int64_t *dims, size_t rank, const char *what,
                         int64_t *numel);
/* Counts bytes against lim.max_weight_bytes. */
KnStatus onnx_count_weight(OnnxImport *im, size_t bytes, const char *what);
/* Converts count little-endian elements of unit bytes in place on big-endian hosts. */
void onnx_le_to_host(void *data, size_t count, int unit);

/* ---- external data (onnx_external.c) ------------------------------------------------------- */
/* Points t->data into the mapped external file named by tp's external_data (t->nbytes set). */
KnStatus onnx_external_load(OnnxImport *im, const Onnx__TensorProto *tp, KnTensor *t,
                            const char *what);
void onnx_external_release(OnnxImport *im); /* frees the cache (mappings stay with the arena) */

/* ---- types (onnx_types.c) ------------------------------------------------------------------- */
KnStatus onnx_type_from_proto(OnnxImport *im, const Onnx__TypeProto *tp, const char *what,
                              KnType *out);

/* ---- model-local functions (onnx_functions.c) --------------------------------------------- */
/* The function named (domain, op_type), or NULL. */
const Onnx__FunctionProto *onnx_find_function(const OnnxImport *im, const char *domain,
                                              const char *name);
/* Inlines a call of fn made by np into scope->g. */
KnStatus onnx_inline_call(OnnxImport *im, OnnxScope *scope, const Onnx__NodeProto *np,
                          const Onnx__FunctionProto *fn, const char *label);
/* The opset version of domain in effect in scope (the function's own imports first), 0 if none. */
int64_t onnx_scope_opset(const OnnxImport *im, const OnnxScope *scope, const char *domain);
/* The caller's attribute that a body attribute with ref_attr_name refers to, or NULL. */
const Onnx__AttributeProto *onnx_call_attr(const OnnxCall *call, const char *ref_name);
/* ---- wire-format pre-scan (proto_scan.c) --------------------------------------------------- */
/* Walks the ModelProto wire format without recursion: nesting depth within max_depth and every
 * length inside its enclosing message. Fails with KN_ERR_LIMIT or KN_ERR_FORMAT. */
KnStatus onnx_proto_scan(const uint8_t *data, size_t size, int max_depth, KnError *err);
/* Reads a varint at *pos (below end); false if it runs past end or past 10 bytes. */
bool onnx_read_varint(const uint8_t *d, size_t *pos, size_t end, uint64_t *out);

#endif
