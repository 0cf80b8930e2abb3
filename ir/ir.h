/* ir.h - kiln's intermediate representation: the one header that maps graphs, values, types,
 * ops, arenas and the functions every later stage (frontend, passes, codegen) builds on. */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

typedef struct KnArena KnArena;
typedef struct KnGraph KnGraph;
typedef struct KnNode KnNode;
typedef struct KnValue KnValue;
typedef struct KnModel KnModel;

/* ---- arena (ir/arena.c) ------------------------------------------------------------------ */
/* Everything a model owns lives in one arena and is freed at once. Allocations are zeroed and
 * 64-byte aligned. ir_arena_alloc returns NULL on overflow or when the arena's byte limit is hit;
 * callers turn that into KN_ERR_NOMEM/KN_ERR_LIMIT. */
KnArena *ir_arena_new(void);
void ir_arena_free(KnArena *a);
void *ir_arena_alloc(KnArena *a, size_t size);
void *ir_arena_calloc(KnArena *a, size_t count, size_t size); /* NULL if count*size overflows */
char *ir_arena_strdup(KnArena *a, const char *s);
char *ir_arena_strndup(KnArena *a, const char *s, size_t n);
char *ir_arena_printf(KnArena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs fn(ctx) when the arena is freed (used to munmap external data). false on OOM. */
bool ir_arena_on_free(KnArena *a, void (*fn)(void *ctx), void *ctx);
void ir_arena_set_limit(KnArena *a, size_t max_bytes); /* 0 = no limit */
size_t ir_arena_bytes(const KnArena *a);               /* bytes handed out so far */
size_t ir_arena_room(const KnArena *a);                /* bytes left under the limit (SIZE_MAX: none) */

/* Grows an arena-backed array (old storage is left to the arena). Evaluates to false on OOM. */
bool ir_grow(KnArena *a, void **items, int *cap, int need, size_t item_size);
#define IR_PUSH(arena, arr, n, cap, item)                                                         \
  (ir_grow((arena), (void **)&(arr), &(cap), (n) + 1, sizeof *(arr)) ? ((arr)[(n)++] = (item), true) \
                                                                       : false)

/* ---- checked arithmetic (ir/arena.c) ------------------------------------------------------ */
bool ir_mul_overflows(int64_t a, int64_t b, int64_t *out); /* true on overflow; a, b >= 0 */
bool ir_add_overflows(int64_t a, int64_t b, int64_t *out);

/* ---- dtypes (ir/dtypes.def, ir/dtype.c) --------------------------------------------------- */
typedef enum KnDtype {
#define DTYPE(e, name, code, bits, fl, sg) KN_##e = code,
#include "dtypes.def"
#undef DTYPE
  KN_DTYPE_COUNT
} KnDtype;

const char *ir_dtype_name(KnDtype t);          /* "f32"; "?" for codes kiln does not know */
bool ir_dtype_from_name(const char *name, KnDtype *out);
bool ir_dtype_is_known(int code);              /* code is a listed, non-UNDEF dtype */
int ir_dtype_bits(KnDtype t);                  /* storage bits per element, 0 for string */
bool ir_dtype_is_float(KnDtype t);
bool ir_dtype_is_int(KnDtype t);               /* integer types, not bool */
bool ir_dtype_is_signed(KnDtype t);
/* Bytes to store numel elements (int4 packs two per byte); false on overflow. */
bool ir_dtype_nbytes(KnDtype t, int64_t numel, size_t *out);

/* ---- strings and bytes ---------------------------------------------------------------------- */
typedef struct KnBytes {
  const char *data; /* may hold NULs; data[len] is always a NUL for convenience */
  size_t len;
} KnBytes;

/* ---- dims, shapes, types -------------------------------------------------------------------- */
/* A dim is concrete (value >= 0), symbolic (sym names it, e.g. "batch"), or unknown (neither). */
typedef struct KnDim {
  int64_t value;   /* >= 0 when concrete, -1 otherwise */
  const char *sym; /* name of a symbolic dim, NULL for concrete or unknown */
} KnDim;

#define IR_DIM(v) ((KnDim){(v), NULL})
#define IR_DIM_UNKNOWN ((KnDim){-1, NULL})
static inline bool ir_dim_is_const(KnDim d) { return d.value >= 0; }
bool ir_dim_equal(KnDim a, KnDim b); /* same constant or same symbol; unknown equals nothing */

typedef struct KnShape {
  int rank;    /* number of dims; -1 when the rank itself is unknown */
  KnDim *dims; /* rank entries, arena-owned */
} KnShape;

typedef enum KnTypeKind {
  KN_TYPE_NONE = 0,  /* not yet known (before inference) */
  KN_TYPE_TENSOR,    /* dtype + shape */
  KN_TYPE_SEQUENCE,  /* elem: the element type */
  KN_TYPE_OPTIONAL,  /* elem: the contained type */
  KN_TYPE_MAP,       /* key_dtype -> elem */
  KN_TYPE_SPARSE,    /* sparse tensor: dtype + shape */
} KnTypeKind;

typedef struct KnType {
  KnTypeKind kind;
  KnDtype dtype;        /* TENSOR, SPARSE: element type (KN_UNDEF if unknown) */
  KnShape shape;        /* TENSOR, SPARSE: shape (rank -1 if unknown) */
  struct KnType *elem;  /* SEQUENCE, OPTIONAL, MAP: the inner type */
  KnDtype key_dtype;    /* MAP only */
} KnType;

bool ir_shape_numel(const KnShape *s, int64_t *out); /* false if a dim is not concrete or overflow */
bool ir_shape_is_const(const KnShape *s);            /* known rank and every dim concrete */
KnShape ir_shape_copy(KnArena *a, const KnShape *s); /* dims==NULL on OOM (rank > 0) */
KnType ir_type_copy(KnArena *a, const KnType *t);    /* deep copy */
/* false when an allocation failed while t was built or copied (a shape of rank > 0 without dims,
 * also inside a sequence's or optional's element type): callers turn that into KN_ERR_NOMEM. */
bool ir_type_whole(const KnType *t);
bool ir_type_equal(const KnType *a, const KnType *b);
KnType ir_type_tensor(KnArena *a, KnDtype dtype, int rank, const int64_t *dims); /* dims may be NULL: unknown */
/* Writes "f32[1,3,?,batch]" / "seq<f32[?]>" / "opt<...>" / "map<i64,f32[]>" into buf. */
int ir_type_format(const KnType *t, char *buf, size_t size);

/* ---- tensors (constant data) ---------------------------------------------------------------- */
struct KnTensorList;
typedef struct KnTensor {
  const char *name;     /* initializer name, or NULL for anonymous attribute tensors */
  KnDtype dtype;
  int rank;
  int64_t *dims;        /* rank entries, all >= 0 */
  int64_t numel;        /* product of dims, checked for overflow */
  void *data;           /* numel elements, native little-endian; STRING: KnBytes[numel] */
  size_t nbytes;        /* size of data in bytes (0 for strings) */
  const char *location; /* external data file it was read from (relative), else NULL */
  int64_t offset;       /* byte offset in that file */
  const char *doc;
  /* Non-NULL: this is not a tensor but a box carrying a sequence or optional through code that
   * passes run-time values as KnTensor * (the runner, stages, control flow); dtype and dims are
   * then meaningless. Only sequence-aware code opens it. */
  struct KnTensorList *list;
} KnTensor;

/* What a sequence- or optional-typed value holds at run time (and what SequenceProto and
 * OptionalProto files hold): a flat list of tensors and how they nest. */
typedef struct KnTensorList {
  const char *name;   /* the proto's name, NULL when unset */
  KnTypeKind kind;    /* KN_TYPE_SEQUENCE or KN_TYPE_OPTIONAL */
  KnTypeKind elem;    /* what the tensors form: KN_TYPE_TENSOR for a sequence of tensors or an
                         optional holding one tensor, KN_TYPE_SEQUENCE for an optional holding a
                         sequence of tensors, KN_TYPE_NONE for an empty optional */
  KnDtype dtype;      /* the tensors' element type (all equal); KN_UNDEF when there are none */
  KnTensor **tensors; /* n_tensors entries, arena-owned */
  int n_tensors;
} KnTensorList;

typedef struct KnSparseTensor {
  KnTensor *values;  /* [NNZ] */
  KnTensor *indices; /* [NNZ] linearized or [NNZ, rank] */
  int rank;
  int64_t *dims;
} KnSparseTensor;

/* Allocates a tensor with zeroed data; dims may be NULL for rank 0. NULL + err on overflow/OOM. */
KnTensor *ir_tensor_new(KnArena *a, KnDtype dtype, int rank, const int64_t *dims, KnError *err);
/* A box for a sequence or optional (see KnTensor.list); NULL + err on OOM. */
KnTensor *ir_tensor_box(KnArena *a, KnTensorList *l, KnError *err);
/* Reads element i of a numeric/bool tensor as int64 or double (converting). */
int64_t ir_tensor_get_int(const KnTensor *t, int64_t i);
double ir_tensor_get_double(const KnTensor *t, int64_t i);
float ir_f16_to_f32(uint16_t h);
float ir_bf16_to_f32(uint16_t h);
uint16_t ir_f32_to_f16(float f);
uint16_t ir_f32_to_bf16(float f);

/* ---- attributes ----------------------------------------------------------------------------- */
/* Kinds numbered as ONNX's AttributeProto.AttributeType. */
typedef enum KnAttrKind {
  KN_ATTR_UNDEF = 0,
  KN_ATTR_FLOAT = 1,
  KN_ATTR_INT = 2,
  KN_ATTR_STRING = 3,
  KN_ATTR_TENSOR = 4,
  KN_ATTR_GRAPH = 5,
  KN_ATTR_FLOATS = 6,
  KN_ATTR_INTS = 7,
  KN_ATTR_STRINGS = 8,
  KN_ATTR_TENSORS = 9,
  KN_ATTR_GRAPHS = 10,
  KN_ATTR_SPARSE_TENSOR = 11,
  KN_ATTR_SPARSE_TENSORS = 12,
  KN_ATTR_TYPE = 13,
  KN_ATTR_TYPES = 14,
} KnAttrKind;

const char *ir_attr_kind_name(KnAttrKind k); /* "int", "floats", "graph", ... */

typedef struct KnAttr {
  const char *name;
  KnAttrKind kind;
  int64_t n;           /* element count for the list kinds */
  union {
    float f;
    int64_t i;
    KnBytes s;
    KnTensor *t;
    KnGraph *g;
    KnSparseTensor *sp;
    KnType *tp;
    float *floats;
    int64_t *ints;
    KnBytes *strings;
    KnTensor **tensors;
    KnGraph **graphs;
    KnSparseTensor **sparses;
    KnType **types;
  };
  const char *ref_attr_name; /* inside a function body: take the caller's attribute of this name */
  const char *doc;
} KnAttr;

/* ---- ops (ir/ops.def, ir/op_table.c) ------------------------------------------------------- */
typedef enum KnOp {
  KN_OP_NONE = 0,
#define OP(name, dom, since, mi, ma, mo, mx, infer, lower) KN_OP_##name,
#include "ops.def"
#undef OP
  KN_OP_COUNT
} KnOp;

typedef enum KnDomain {
  KN_DOMAIN_ONNX,     /* "" or "ai.onnx" */
  KN_DOMAIN_ML,       /* "ai.onnx.ml" */
  KN_DOMAIN_TRAINING, /* "ai.onnx.preview.training" */
  KN_DOMAIN_MS,       /* "com.microsoft" */
  KN_DOMAIN_KILN,     /* "kiln": ops that kiln's own passes create */
  KN_DOMAIN_COUNT
} KnDomain;

#define IR_VARIADIC 0x7fff
typedef KnStatus (*KnInferFn)(KnNode *node, KnError *err);

typedef struct KnOpInfo {
  const char *name;  /* "Conv" */
  KnDomain domain;
  int since;         /* first opset of its domain that has it */
  int min_inputs, max_inputs, min_outputs, max_outputs; /* max may be IR_VARIADIC */
  KnInferFn infer;
} KnOpInfo;

extern const KnOpInfo ir_ops[KN_OP_COUNT];
const char *ir_domain_name(KnDomain d);            /* canonical: "" for ONNX */
bool ir_domain_from_name(const char *name, KnDomain *out); /* accepts "" and "ai.onnx" */
int ir_domain_max_opset(KnDomain d);               /* newest opset kiln supports */
KnOp ir_op_lookup(KnDomain d, const char *name);   /* KN_OP_NONE if unknown */

/* ---- values, nodes, graphs, models ---------------------------------------------------------- */
struct KnValue {
  int id;                 /* index in graph->values */
  const char *name;       /* unique within its graph and enclosing graphs; never NULL */
  KnType type;
  KnGraph *graph;         /* the graph that defines it */
  KnNode *producer;       /* NULL for graph inputs and initializers */
  int out_index;          /* which output of producer */
  KnTensor *init;         /* initializer data, or NULL */
  bool is_input;          /* listed in graph->inputs */
  const char *doc;
  /* Known contents of a small integer tensor (<= IR_SYM_DATA_MAX elements), e.g. the result of
   * Shape or of arithmetic on it. Lets Reshape after Shape->Gather->Concat see its target shape.
   * NULL when not known. CAUTION, entries are not shape dims: sym == NULL means the integer
   * `value` (which may be negative, like Reshape's -1); otherwise sym names a symbolic dim, or is
   * IR_SYM_UNKNOWN for an entry whose value is not known. Convert with ir_dim_to_sym and
   * ir_sym_to_dim. */
  KnDim *sym_data;
  int sym_len;
  int64_t scratch;        /* free for one pass's temporary marks; meaningless between passes */
};
#define IR_SYM_DATA_MAX 64
extern const char IR_SYM_UNKNOWN[]; /* "?": marks an unknown entry of sym_data */
KnDim ir_dim_to_sym(KnDim shape_dim); /* unknown shape dim -> {-1, IR_SYM_UNKNOWN} */
KnDim ir_sym_to_dim(KnDim entry);     /* unknown or negative entry -> IR_DIM_UNKNOWN */

struct KnNode {
  int id;               /* position in graph->nodes after the last ir_graph_renumber */
  const char *name;     /* may be "" */
  KnOp op;
  KnDomain domain;
  int opset;            /* version of its domain's opset that the model imports */
  KnValue **inputs;     /* n_inputs entries; NULL marks an omitted optional input */
  int n_inputs;
  KnValue **outputs;    /* n_outputs entries; NULL marks an omitted optional output */
  int n_outputs;
  KnAttr *attrs;
  int n_attrs;
  KnGraph *graph;       /* the graph that holds this node */
  const char *doc;
};

typedef struct KnGraph {
  KnArena *arena;       /* the model's arena; subgraphs share it */
  KnModel *model;
  KnGraph *parent;      /* enclosing graph for subgraphs, else NULL */
  KnNode *parent_node;  /* node whose attribute holds this subgraph */
  const char *name;
  const char *doc;
  KnNode **nodes;       /* topological order */
  int n_nodes, cap_nodes;
  KnValue **values;     /* every value defined in this graph (inputs, initializers, node outputs) */
  int n_values, cap_values;
  KnValue **inputs;     /* graph inputs in order (may include initializers with defaults) */
  int n_inputs, cap_inputs;
  KnValue **outputs;    /* graph outputs in order (may be any value visible here) */
  int n_outputs, cap_outputs;
  KnValue **inits;      /* initializers in order */
  int n_inits, cap_inits;
  int next_id;          /* counter for generated names */
  struct KnNameIndex *index; /* name -> value hash of this graph's values (ir/graph.c) */
} KnGraph;

typedef struct KnOpsetImport {
  const char *domain; /* as written in the model */
  int64_t version;
} KnOpsetImport;

typedef struct KnStrPair {
  const char *key, *value;
} KnStrPair;

struct KnModel {
  KnArena *arena;              /* owns the model and everything in it */
  int64_t ir_version;
  const char *producer_name, *producer_version, *domain, *doc;
  int64_t model_version;
  KnOpsetImport *opsets;
  int n_opsets, cap_opsets;
  KnStrPair *metadata;
  int n_metadata, cap_metadata;
  KnGraph *graph;
  const char *path;            /* file it was loaded from, for messages ("<memory>" otherwise) */
  const char *dir;             /* folder that external data paths are relative to */
};

/* ---- building graphs (ir/graph.c) ----------------------------------------------------------- */
/* The C builder API: tests and the importers make graphs with these. All allocate in the
 * model's arena and return NULL (with err set) on failure. */
KnModel *ir_model_new(KnError *err);               /* fresh arena, ir_version 8, empty graph */
void ir_model_free(KnModel *m);                    /* frees the arena and everything in it */
/* A copy of m in a new arena (ir/clone.c) that passes may rewrite while m stays intact. Tensor
 * data, strings and attribute types are shared with m, so m must outlive the copy. */
KnModel *ir_model_clone(const KnModel *m, KnError *err);
/* A model made of nodes [first, end) of m's top graph, in order: every value those nodes (or
 * their subgraphs) read that is produced outside the range becomes a graph input, in order of
 * first use, except initializers, which stay constants; outputs lists the values it returns.
 * Shares data with m like ir_model_clone. Used to split a model into stages. */
KnModel *ir_model_extract(const KnModel *m, int first, int end, KnValue *const *outputs,
                          int n_outputs, KnError *err);
/* The values of n's own graph that n's subgraphs read (captures), in arena a. */
KnStatus ir_node_captures(const KnNode *n, KnArena *a, KnValue ***out, int *n_out, KnError *err);
/* A model whose graph is a copy of subgraph sub: sub's inputs first, then every value sub reads
 * from enclosing graphs (by name; outer initializers stay constants); sub's outputs. */
KnModel *ir_model_from_subgraph(const KnModel *m, const KnGraph *sub, KnError *err);
bool ir_model_set_opset(KnModel *m, const char *domain, int64_t version);
int64_t ir_model_opset(const KnModel *m, KnDomain d); /* 0 if not imported */
KnGraph *ir_graph_new(KnModel *m, KnGraph *parent, const char *name);
KnValue *ir_value_new(KnGraph *g, const char *name); /* name NULL: generated, unique */
KnValue *ir_add_input(KnGraph *g, const char *name, KnType type);
KnValue *ir_add_init(KnGraph *g, const char *name, KnTensor *t);
bool ir_add_output(KnGraph *g, KnValue *v);
/* Adds a node at the end of g with the given inputs (NULL = omitted) and n_outputs fresh outputs
 * (names generated from the node name). Opset is the model's for the op's domain. */
KnNode *ir_add_node(KnGraph *g, KnOp op, const char *name, KnValue *const *inputs, int n_inputs,
                    int n_outputs, KnError *err);
KnAttr *ir_set_attr(KnNode *n, const char *name, KnAttrKind kind); /* adds or replaces */
bool ir_set_attr_int(KnNode *n, const char *name, int64_t v);
bool ir_set_attr_float(KnNode *n, const char *name, float v);
bool ir_set_attr_string(KnNode *n, const char *name, const char *v);
bool ir_set_attr_ints(KnNode *n, const char *name, const int64_t *v, int64_t count);
bool ir_set_attr_floats(KnNode *n, const char *name, const float *v, int64_t count);
bool ir_set_attr_tensor(KnNode *n, const char *name, KnTensor *t);
bool ir_set_attr_graph(KnNode *n, const char *name, KnGraph *g);
/* Finds a value visible from g by name: g's own values, then enclosing graphs'. */
KnValue *ir_find_value(const KnGraph *g, const char *name);
void ir_graph_renumber(KnGraph *g);                /* node->id = index, value->id = index */
/* Removes nodes for which keep[node->id] is false (after ir_graph_renumber) and their outputs. */
void ir_graph_remove_nodes(KnGraph *g, const bool *keep);
/* Replaces every use of old (node inputs, graph outputs, subgraph uses) by new. */
void ir_replace_uses(KnGraph *g, KnValue *old_value, KnValue *new_value);

/* ---- reading attributes (ir/graph.c) ------------------------------------------------------ */
const KnAttr *ir_attr(const KnNode *n, const char *name); /* NULL if absent */
int64_t ir_attr_int(const KnNode *n, const char *name, int64_t dflt);
float ir_attr_float(const KnNode *n, const char *name, float dflt);
const char *ir_attr_string(const KnNode *n, const char *name, const char *dflt);
/* Sets *count and returns the list, or NULL (count 0) if absent. */
const int64_t *ir_attr_ints(const KnNode *n, const char *name, int64_t *count);
const float *ir_attr_floats(const KnNode *n, const char *name, int64_t *count);

/* ---- shape inference (ir/infer.c, ir/infer_*.c) ------------------------------------------- */
/* Infers every node output's type in order, merging with types already declared (value_info,
 * graph outputs): declared and inferred must agree (a concrete dim may refine a symbolic or
 * unknown one). Subgraphs are inferred by their owners' infer functions (If, Loop, Scan, ...),
 * which set the body's input types and call this. Errors name the node, op and what was expected. */
KnStatus ir_infer_graph(KnGraph *g, KnError *err);
/* Sets concrete shapes on named graph inputs (dims[i] >= 0) and re-infers the whole graph. */
typedef struct KnShapeBinding {
  const char *name;
  int rank;
  const int64_t *dims;
} KnShapeBinding;
KnStatus ir_specialize(KnGraph *g, const KnShapeBinding *bind, int n_bind, KnError *err);

/* Helpers for infer functions (ir/infer_util.c). Each returns KN_OK or fails with a message that
 * already names the node; "input i" is zero-based. */
KnStatus ir_infer_fail(KnError *err, const KnNode *n, KnStatus st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
KnValue *ir_input(const KnNode *n, int i);         /* NULL if absent or omitted */
const KnType *ir_input_tensor(const KnNode *n, int i); /* NULL unless a tensor-typed input */
KnStatus ir_require_tensor(const KnNode *n, int i, KnError *err); /* input i exists and is a tensor */
/* Output i becomes a tensor of dtype with the given dims (copied). rank -1: unknown rank. */
KnStatus ir_set_output(KnNode *n, int i, KnDtype dtype, int rank, const KnDim *dims, KnError *err);
KnStatus ir_set_output_type(KnNode *n, int i, const KnType *t, KnError *err); /* deep copies t */
/* Numpy broadcast of a and b into out (arena-owned dims). Fails on incompatible concrete dims. */
KnStatus ir_broadcast(const KnNode *n, const KnShape *a, const KnShape *b, KnShape *out,
                      KnError *err);
/* Values of a 1-D/0-D integer input known at compile time (initializer or sym_data): returns
 * count (<= max) and fills out, or -1 if not known. Symbolic or unknown entries make it -1;
 * ir_input_dims returns them instead, as sym_data entries (see KnValue.sym_data). */
int ir_input_ints(const KnNode *n, int i, int64_t *out, int max);
int ir_input_dims(const KnNode *n, int i, KnDim *out, int max);
/* Normalizes a possibly negative axis against rank; fails (naming the node) if out of range. */
KnStatus ir_norm_axis(const KnNode *n, int64_t axis, int rank, int *out, KnError *err);
/* A fresh unknown dim, or the product/sum of two dims when both are concrete. */
KnDim ir_dim_mul(KnDim a, KnDim b);
KnDim ir_dim_add(KnDim a, KnDim b);
/* Records the known contents of output i (a small integer tensor). */
KnStatus ir_set_sym_data(KnNode *n, int i, const KnDim *data, int len, KnError *err);

/* ---- verifier (ir/verify.c) --------------------------------------------------------------- */
/* Checks SSA (one producer per value, producers consistent), topological order (every input
 * defined before use, in this graph or an enclosing one), op arity against the op table,
 * types present and well formed (dims >= 0 or symbolic), initializer data matching its type,
 * and recurses into subgraphs. */
KnStatus ir_verify(const KnModel *m, KnError *err);

#endif
