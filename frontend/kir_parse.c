/* kir_parse.c - the .kir reader: recursive descent over the model header, graphs and
 * statements, building the model through the ir.h builder API (grammar in frontend/KIR.md). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "frontend/kir_internal.h"

/* ---- token helpers ----------------------------------------------------------------------- */

void kp_next(KirParser *P) { P->tok = kir_lex_next(&P->lx); }

KnStatus kp_fail(KirParser *P, const KirTok *at, KnStatus st, const char *fmt, ...) {
  if (P->err->status) return P->err->status; /* the lexer or a deeper call said it first */
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kn_fail(P->err, st, "%s:%d:%d: %s", P->lx.path, at->line, at->col, msg);
}

KnStatus kp_nomem(KirParser *P) {
  return kp_fail(P, &P->tok, KN_ERR_NOMEM, "out of memory");
}

bool kp_accept(KirParser *P, char c) {
  if (!kir_tok_punct(&P->tok, c)) return false;
  kp_next(P);
  return true;
}

/* Quotes the current token for messages. */
static const char *found(const KirParser *P, char *buf, size_t size) {
  if (P->tok.kind == KT_EOF) return "end of file";
  snprintf(buf, size, "'%.*s%s'", P->tok.len > 24 ? 24 : (int)P->tok.len, P->tok.p,
           P->tok.len > 24 ? "..." : "");
  return buf;
}

KnStatus kp_expect(KirParser *P, char c, const char *context) {
  if (kp_accept(P, c)) return KN_OK;
  char buf[40];
  return kp_fail(P, &P->tok, KN_ERR_FORMAT, "expected '%c' %s, found %s", c, context,
                 found(P, buf, sizeof buf));
}

static KnStatus expected(KirParser *P, const char *what) {
  char buf[40];
  return kp_fail(P, &P->tok, KN_ERR_FORMAT, "expected %s, found %s", what, found(P, buf, sizeof buf));
}

bool kp_at(const KirParser *P, const char *word) { return kir_tok_is(&P->tok, KT_IDENT, word); }

KnStatus kp_string(KirParser *P, const char *what, KnBytes *out) {
  if (P->tok.kind != KT_STRING) return expected(P, what);
  if (!kir_decode_string(P->a, &P->tok, out)) return kp_nomem(P);
  kp_next(P);
  return KN_OK;
}

static KnStatus no_nul(KirParser *P, const KirTok *at, const KnBytes *b, const char *what) {
  if (memchr(b->data, 0, b->len)) return kp_fail(P, at, KN_ERR_FORMAT, "%s contains a NUL byte", what);
  return KN_OK;
}

KnStatus kp_cstring(KirParser *P, const char *what, const char **out) {
  KirTok at = P->tok;
  KnBytes b;
  KnStatus st = kp_string(P, what, &b);
  if (!st) st = no_nul(P, &at, &b, what);
  if (!st) *out = b.data;
  return st;
}

KnStatus kp_clause(KirParser *P, const char *key, const char **out) {
  if (!kp_at(P, key)) return KN_OK;
  kp_next(P);
  KnStatus st = kp_expect(P, '=', "after the clause name");
  return st ? st : kp_cstring(P, "a string", out);
}

/* A %value or %"value" name as a C string. */
static KnStatus value_name(KirParser *P, const char **out) {
  KirTok at = P->tok;
  KnBytes b;
  if (at.kind != KT_VALUE) return expected(P, "a %value");
  if (!kir_decode_string(P->a, &at, &b)) return kp_nomem(P);
  kp_next(P);
  *out = b.data;
  return no_nul(P, &at, &b, "value name");
}

/* ---- graphs ------------------------------------------------------------------------------ */

static KnStatus check_new_name(KirParser *P, const KirTok *at, const KnGraph *g, const char *name) {
  if (ir_find_value(g, name)) return kp_fail(P, at, KN_ERR_INVALID, "value %%%s is defined twice", name);
  return KN_OK;
}

static KnStatus parse_input(KirParser *P, KnGraph *g) {
  KirTok at = P->tok;
  const char *name;
  KnType type;
  KnStatus st = value_name(P, &name);
  if (!st) st = check_new_name(P, &at, g, name);
  if (!st) st = kp_expect(P, ':', "after an input name");
  if (!st) st = kp_type(P, &type, 0);
  if (st) return st;
  KnValue *v = ir_add_input(g, name, type);
  if (!v) return kp_nomem(P);
  return kp_clause(P, "doc", &v->doc);
}

static KnStatus parse_signature(KirParser *P, KnGraph *g) {
  KnStatus st = kp_cstring(P, "a graph name string", &g->name);
  if (!st) st = kp_expect(P, '(', "after the graph name");
  if (!st && !kir_tok_punct(&P->tok, ')')) {
    do st = parse_input(P, g);
    while (!st && kp_accept(P, ','));
  }
  if (!st) st = kp_expect(P, ')', "after the graph inputs");
  if (!st) st = kp_clause(P, "doc", &g->doc);
  if (!st) st = kp_expect(P, '{', "to open the graph body");
  return st;
}

/* "%w = const <tensor>" defines an initializer; "%x = default <tensor>" gives graph input %x
 * of this graph its default value. */
static KnStatus parse_const(KirParser *P, KnGraph *g, const char *name, const KirTok *at,
                            bool is_default) {
  KnValue *v = ir_find_value(g, name);
  if (is_default && (!v || v->graph != g || !v->is_input || v->init))
    return kp_fail(P, at, KN_ERR_INVALID, "%%%s is not an input of this graph without a default", name);
  if (!is_default && v) return kp_fail(P, at, KN_ERR_INVALID, "value %%%s is defined twice", name);
  KnTensor *t;
  KnStatus st = kp_tensor(P, &t);
  if (st) return st;
  if (ir_add_overflows(P->weight_bytes, (int64_t)t->nbytes, &P->weight_bytes) ||
      (uint64_t)P->weight_bytes > (uint64_t)P->lim.max_weight_bytes)
    return kp_fail(P, at, KN_ERR_LIMIT, "initializers exceed %zu bytes", P->lim.max_weight_bytes);
  if (is_default) {
    if (!t->name) t->name = v->name;
    v->init = t;
    return IR_PUSH(P->a, g->inits, g->n_inits, g->cap_inits, v) ? KN_OK : kp_nomem(P);
  }
  v = ir_add_init(g, name, t);
  if (!v) return kp_nomem(P);
  if (!kp_accept(P, ':')) return KN_OK;
  st = kp_type(P, &v->type, 0);
  return st ? st : kp_clause(P, "doc", &v->doc);
}

typedef struct OutList {
  const char **names; /* NULL = omitted output */
  KirTok *at;
  int n, cap, cap_at;
} OutList;

static KnStatus parse_outputs(KirParser *P, OutList *o) {
  do {
    KirTok at = P->tok;
    const char *name = NULL;
    KnStatus st = KN_OK;
    if (kp_at(P, "_")) kp_next(P);
    else st = value_name(P, &name);
    if (st) return st;
    int n = o->n;
    if (!IR_PUSH(P->a, o->names, o->n, o->cap, name) || !IR_PUSH(P->a, o->at, n, o->cap_at, at))
      return kp_nomem(P);
  } while (kp_accept(P, ','));
  return kp_expect(P, '=', "after the outputs");
}

/* Op name, with "domain::" unless it is ONNX's default domain. */
static KnStatus parse_op(KirParser *P, KnOp *op) {
  KirTok at = P->tok, dom_tok = {0};
  if (at.kind != KT_IDENT) return expected(P, "an op name");
  kp_next(P);
  if (P->tok.kind == KT_PUNCT && P->tok.len == 2) { /* "::" */
    dom_tok = at;
    kp_next(P);
    at = P->tok;
    if (at.kind != KT_IDENT) return expected(P, "an op name after '::'");
    kp_next(P);
  }
  char dom[64] = "", name[128];
  if (dom_tok.len >= sizeof dom || at.len >= sizeof name)
    return kp_fail(P, &at, KN_ERR_UNSUPPORTED, "unknown op '%.*s'", (int)at.len, at.p);
  snprintf(dom, sizeof dom, "%.*s", (int)dom_tok.len, dom_tok.p ? dom_tok.p : "");
  snprintf(name, sizeof name, "%.*s", (int)at.len, at.p);
  KnDomain d;
  if (!ir_domain_from_name(dom, &d))
    return kp_fail(P, &dom_tok, KN_ERR_UNSUPPORTED, "unknown op domain '%s'", dom);
  *op = ir_op_lookup(d, name);
  if (*op == KN_OP_NONE)
    return kp_fail(P, &at, KN_ERR_UNSUPPORTED, "unknown op '%s%s%s'", dom, dom[0] ? "::" : "", name);
  int64_t opset = ir_model_opset(P->m, d);
  if (opset > 0 && ir_ops[*op].since > opset)
    return kp_fail(P, &at, KN_ERR_UNSUPPORTED, "op '%s' needs opset %d of its domain, the model imports %lld",
                   name, ir_ops[*op].since, (long long)opset);
  return KN_OK;
}

static KnStatus parse_inputs(KirParser *P, KnGraph *g, KnValue ***ins, int *n_ins) {
  int cap = 0;
  KnStatus st = kp_expect(P, '(', "after the op name");
  if (st || kp_accept(P, ')')) return st;
  do {
    KirTok at = P->tok;
    const char *name;
    KnValue *v = NULL;
    if (kp_at(P, "_")) {
      kp_next(P);
    } else {
      if ((st = value_name(P, &name))) return st;
      if (!(v = ir_find_value(g, name)))
        return kp_fail(P, &at, KN_ERR_INVALID, "value %%%s is used before it is defined", name);
    }
    if (!IR_PUSH(P->a, *ins, *n_ins, cap, v)) return kp_nomem(P);
  } while (kp_accept(P, ','));
  return kp_expect(P, ')', "after the op inputs");
}

static KnStatus define_outputs(KirParser *P, KnNode *n, const OutList *o) {
  n->outputs = ir_arena_calloc(P->a, (size_t)o->n + 1, sizeof *n->outputs);
  if (!n->outputs) return kp_nomem(P);
  n->n_outputs = o->n;
  for (int i = 0; i < o->n; i++) {
    if (!o->names[i]) continue;
    KnStatus st = check_new_name(P, &o->at[i], n->graph, o->names[i]);
    if (st) return st;
    KnValue *v = ir_value_new(n->graph, o->names[i]);
    if (!v) return kp_nomem(P);
    v->producer = n;
    v->out_index = i;
    n->outputs[i] = v;
  }
  return KN_OK;
}

/* ": type [doc=...], ..." - one entry per output that is not omitted. */
static KnStatus parse_output_types(KirParser *P, KnNode *n) {
  if (!kp_accept(P, ':')) return KN_OK;
  KirTok at = P->tok;
  int k = 0;
  for (int i = 0; i < n->n_outputs; i++) {
    KnValue *v = n->outputs[i];
    if (!v) continue;
    KnStatus st = k++ ? kp_expect(P, ',', "between output types") : KN_OK;
    if (!st) st = kp_type(P, &v->type, 0);
    if (!st) st = kp_clause(P, "doc", &v->doc);
    if (st) return st;
  }
  if (k == 0 || kir_tok_punct(&P->tok, ','))
    return kp_fail(P, &at, KN_ERR_FORMAT, "expected one type per output that is not omitted (%d)", k);
  return KN_OK;
}

static KnStatus parse_node(KirParser *P, KnGraph *g, const OutList *o) {
  KirTok at = P->tok;
  KnOp op = KN_OP_NONE;
  KnValue **ins = NULL;
  int n_ins = 0;
  KnStatus st = parse_op(P, &op);
  if (!st) st = parse_inputs(P, g, &ins, &n_ins);
  if (st) return st;
  KnNode *n = ir_add_node(g, op, NULL, ins, n_ins, 0, P->err);
  if (!n) return kp_fail(P, &at, KN_ERR_NOMEM, "out of memory");
  if (kir_tok_punct(&P->tok, '{')) st = kp_attrs(P, n);
  if (!st) st = kp_clause(P, "name", &n->name);
  if (!st) st = kp_clause(P, "doc", &n->doc);
  if (!st) st = define_outputs(P, n, o);
  if (!st) st = parse_output_types(P, n);
  return st;
}

static KnStatus parse_statement(KirParser *P, KnGraph *g) {
  OutList o = {0};
  KirTok at = P->tok;
  if (P->tok.kind == KT_VALUE || kp_at(P, "_")) {
    KnStatus st = parse_outputs(P, &o);
    if (st) return st;
    bool is_default = kp_at(P, "default");
    if (is_default || kp_at(P, "const")) {
      if (o.n != 1 || !o.names[0])
        return kp_fail(P, &at, KN_ERR_FORMAT, "a const or default defines exactly one named value");
      kp_next(P);
      return parse_const(P, g, o.names[0], &at, is_default);
    }
  } else if (P->tok.kind != KT_IDENT) {
    return expected(P, "a statement or 'return'");
  }
  return parse_node(P, g, &o);
}

static KnStatus parse_return(KirParser *P, KnGraph *g) {
  kp_next(P);
  KnStatus st = KN_OK;
  if (!kir_tok_punct(&P->tok, '}')) {
    do {
      KirTok at = P->tok;
      const char *name;
      if ((st = value_name(P, &name))) return st;
      KnValue *v = ir_find_value(g, name);
      if (!v) return kp_fail(P, &at, KN_ERR_INVALID, "graph output %%%s is not defined", name);
      if (!ir_add_output(g, v)) return kp_nomem(P);
    } while (kp_accept(P, ','));
  }
  return kp_expect(P, '}', "after the graph outputs");
}

/* After the "graph" keyword: name, inputs, body, return. */
static KnStatus parse_graph(KirParser *P, KnGraph *g) {
  if (++P->depth > P->lim.max_graph_depth)
    return kp_fail(P, &P->tok, KN_ERR_LIMIT, "graphs nested deeper than %d", P->lim.max_graph_depth);
  KnStatus st = parse_signature(P, g);
  while (!st && !kp_at(P, "return")) {
    if (P->tok.kind == KT_EOF) return expected(P, "'return' before the end of the graph");
    st = parse_statement(P, g);
  }
  if (!st) st = parse_return(P, g);
  P->depth--;
  return st;
}

KnStatus kp_subgraph(KirParser *P, KnNode *n, KnGraph **out) {
  kp_next(P);
  KnGraph *g = ir_graph_new(P->m, n->graph, "");
  if (!g) return kp_nomem(P);
  g->parent_node = n;
  *out = g;
  return parse_graph(P, g);
}

/* ---- the model header -------------------------------------------------------------------- */

static KnStatus parse_header_item(KirParser *P) {
  KnModel *m = P->m;
  KirTok at = P->tok;
  kp_next(P);
  if (kir_tok_is(&at, KT_IDENT, "ir_version")) return kp_int(P, "an ir_version", &m->ir_version);
  if (kir_tok_is(&at, KT_IDENT, "model_version")) return kp_int(P, "a model_version", &m->model_version);
  if (kir_tok_is(&at, KT_IDENT, "domain")) return kp_cstring(P, "a domain string", &m->domain);
  if (kir_tok_is(&at, KT_IDENT, "doc")) return kp_cstring(P, "a doc string", &m->doc);
  if (kir_tok_is(&at, KT_IDENT, "producer")) {
    KnStatus st = kp_cstring(P, "a producer name string", &m->producer_name);
    return st ? st : kp_cstring(P, "a producer version string", &m->producer_version);
  }
  const char *a, *b;
  int64_t version;
  if (kir_tok_is(&at, KT_IDENT, "opset")) {
    KnStatus st = kp_cstring(P, "an opset domain string", &a);
    if (!st) st = kp_int(P, "an opset version", &version);
    if (!st && !ir_model_set_opset(m, a, version)) st = kp_nomem(P);
    return st;
  }
  if (kir_tok_is(&at, KT_IDENT, "metadata")) {
    KnStatus st = kp_cstring(P, "a metadata key string", &a);
    if (!st) st = kp_cstring(P, "a metadata value string", &b);
    if (!st && !IR_PUSH(P->a, m->metadata, m->n_metadata, m->cap_metadata, ((KnStrPair){a, b})))
      st = kp_nomem(P);
    return st;
  }
  return kp_fail(P, &at, KN_ERR_FORMAT, "expected a header line or 'graph', found '%.*s'",
                 at.len > 24 ? 24 : (int)at.len, at.p);
}

static KnStatus parse_model(KirParser *P) {
  if (!kp_at(P, "kir")) return expected(P, "'kir 1' on the first line");
  kp_next(P);
  KirTok at = P->tok;
  int64_t version;
  KnStatus st = kp_int(P, "the kir version", &version);
  if (st) return st;
  if (version != KIR_VERSION)
    return kp_fail(P, &at, KN_ERR_UNSUPPORTED, "kir version %lld is not supported (this kiln reads %d)",
                   (long long)version, KIR_VERSION);
  while (!st && P->tok.kind == KT_IDENT && !kp_at(P, "graph")) st = parse_header_item(P);
  if (st) return st;
  if (!kp_at(P, "graph")) return expected(P, "'graph'");
  kp_next(P);
  if ((st = parse_graph(P, P->m->graph))) return st;
  return P->tok.kind == KT_EOF ? KN_OK : expected(P, "the end of the file after the graph");
}

/* ---- entry points ------------------------------------------------------------------------ */

KnStatus kir_parse_string(const char *text, size_t len, const char *path, const char *dir,
                          const KnLimits *lim, KnModel **out, KnError *err) {
  *out = NULL;
  KnError local = {0};
  KirParser P = {.err = &local, .dir = dir};
  if (lim) P.lim = *lim;
  fe_limits_resolve(&P.lim);
  if (!path) path = "<memory>";
  if (len > P.lim.max_file_bytes)
    return kn_fail(err, KN_ERR_LIMIT, "%s: %zu bytes exceed the %zu-byte limit", path, len, P.lim.max_file_bytes);
  P.m = ir_model_new(&local);
  if (!P.m) return kn_fail(err, local.status, "%s: %s", path, local.msg);
  P.a = P.m->arena;
  P.m->path = ir_arena_strdup(P.a, path);
  P.m->dir = dir ? ir_arena_strdup(P.a, dir) : NULL;
  if (!P.m->path || (dir && !P.m->dir)) {
    ir_model_free(P.m);
    return kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  }
  kir_lex_init(&P.lx, text, len, P.m->path, &local);
  kp_next(&P);
  KnStatus st = parse_model(&P);
  if (st) {
    ir_model_free(P.m);
    return kn_fail(err, st, "%s", local.msg);
  }
  *out = P.m;
  return KN_OK;
}

/* Reads path into a NUL-terminated buffer. fe_map_file opens without blocking (a FIFO is refused,
 * not waited on) and applies the file-size limit. */
static KnStatus read_text(const char *path, const KnLimits *lim, char **text, size_t *len, KnError *err) {
  void *map = NULL;
  size_t size = 0;
  KnStatus st = fe_map_file(path, lim, &map, &size, err);
  if (st) return st;
  *text = malloc(size + 1);
  if (*text) {
    if (size) memcpy(*text, map, size);
    (*text)[size] = 0;
    *len = size;
  } else {
    st = kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  }
  if (map) munmap(map, size);
  return st;
}

KnStatus kir_parse_file(const char *path, const KnLimits *lim, KnModel **out, KnError *err) {
  KnLimits l = lim ? *lim : (KnLimits){0};
  fe_limits_resolve(&l);
  char *text = NULL;
  size_t len = 0;
  *out = NULL;
  KnStatus st = read_text(path, &l, &text, &len, err);
  if (st) return st;
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  st = dir ? kir_parse_string(text, len, path, dir, &l, out, err)
           : kn_fail(err, KN_ERR_NOMEM, "%s: out of memory", path);
  free(dir);
  free(text);
  return st;
}
