/* kir_internal.h - private pieces shared by the .kir lexer, parser, printer and safetensors code. */
#ifndef KILN_KIR_INTERNAL_H
#define KILN_KIR_INTERNAL_H

#include <stdio.h>

#include "frontend/frontend.h"

#define KIR_VERSION 1
#define KIR_MAX_TYPE_DEPTH 32 /* seq<opt<...>> nesting */
#define KIR_FLOAT_BUF 48      /* room for any number kir_fmt_* writes */

/* ---- lexer (frontend/kir_lex.c) --------------------------------------------------------- */
typedef enum KirTokKind {
  KT_EOF,
  KT_ERROR,  /* the lexer already reported it */
  KT_IDENT,  /* [A-Za-z_][A-Za-z0-9_.]* */
  KT_VALUE,  /* %name or %"quoted name"; p/len exclude the '%' */
  KT_STRING, /* "..." with escapes; p/len include the quotes */
  KT_NUMBER, /* -?digits[.digits][e[+-]digits] or 0x hex digits */
  KT_PUNCT,  /* one of ( ) { } [ ] < > , : = @ * ? - or "::" */
} KirTokKind;

typedef struct KirTok {
  KirTokKind kind;
  const char *p;
  size_t len;
  int line, col;
} KirTok;

typedef struct KirLexer {
  const char *path;
  const char *cur, *end, *line_start;
  int line;
  KnError *err;
} KirLexer;

void kir_lex_init(KirLexer *lx, const char *text, size_t len, const char *path, KnError *err);
KirTok kir_lex_next(KirLexer *lx);
bool kir_tok_is(const KirTok *t, KirTokKind kind, const char *text);
bool kir_tok_punct(const KirTok *t, char c);
/* Decodes a STRING token, or a quoted VALUE token, into arena bytes (NUL-terminated). The lexer
 * has already checked the escapes, so only OOM fails. Unquoted VALUE tokens are copied. */
bool kir_decode_string(KnArena *a, const KirTok *t, KnBytes *out);

/* ---- parser (frontend/kir_parse.c, kir_parse_value.c, kir_parse_attr.c) ---------------- */
typedef struct KirStFile { /* a safetensors file referenced from the .kir, read once */
  const char *rel;
  KnTensor **by_name; /* sorted by name for bsearch */
  int n;
} KirStFile;

typedef struct KirParser {
  KirLexer lx;
  KirTok tok; /* the current token */
  KnModel *m;
  KnArena *a;
  KnLimits lim;
  KnError *err;
  const char *dir; /* folder safetensors references are relative to; NULL: none allowed */
  int depth;       /* graphs being parsed, outermost = 1 */
  int64_t weight_bytes;
  KirStFile *files;
  int n_files, cap_files;
} KirParser;

void kp_next(KirParser *P);
KnStatus kp_fail(KirParser *P, const KirTok *at, KnStatus st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
KnStatus kp_nomem(KirParser *P);
bool kp_accept(KirParser *P, char c);
KnStatus kp_expect(KirParser *P, char c, const char *context);
bool kp_at(const KirParser *P, const char *word);  /* current token is this identifier */
KnStatus kp_string(KirParser *P, const char *what, KnBytes *out); /* any bytes */
KnStatus kp_cstring(KirParser *P, const char *what, const char **out); /* no NUL inside */
KnStatus kp_clause(KirParser *P, const char *key, const char **out); /* optional key="..." */
KnStatus kp_int(KirParser *P, const char *what, int64_t *out);
bool kp_at_float(const KirParser *P); /* a float literal (not a bare integer) starts here */
/* Reads a number into dst as dtype dt (f32, f64, f16 or bf16). */
KnStatus kp_float(KirParser *P, KnDtype dt, void *dst);
KnStatus kp_type(KirParser *P, KnType *out, int depth);
KnStatus kp_tensor(KirParser *P, KnTensor **out);
KnStatus kp_dims(KirParser *P, int *rank, int64_t **dims); /* [2,3] concrete dims */
KnStatus kp_attrs(KirParser *P, KnNode *n);
/* Parses "graph ..." (current token is the keyword) as a subgraph of node n. */
KnStatus kp_subgraph(KirParser *P, KnNode *n, KnGraph **out);

/* ---- shared spelling rules (frontend/kir_format.c) ------------------------------------- */
bool kir_is_ident(const char *s, size_t len);      /* prints bare as an identifier */
bool kir_is_value_name(const char *s, size_t len); /* prints bare after '%' */
bool kir_is_value_char(int c);
/* Shortest decimal that re-parses to the same bits; nan/inf/-inf spelled out, nan(0x...) for
 * NaNs other than the canonical ones; always has '.', 'e', "nan" or "inf" so it reads as float. */
void kir_fmt_f32(char *buf, float v);
void kir_fmt_f64(char *buf, double v);
void kir_fmt_half(char *buf, uint16_t bits, bool bf16);

/* ---- printer pieces (frontend/kir_print_value.c, kir_print.c) -------------------------- */
typedef struct KirWeights KirWeights;
typedef struct KirPrinter {
  FILE *f;
  KirWeights *w; /* where large tensors go; NULL prints everything inline */
  KnError *err;
} KirPrinter;

void kir_put_string(FILE *f, const char *s, size_t len);
void kir_put_value_name(FILE *f, const char *name);
void kir_put_type(FILE *f, const KnType *t);
KnStatus kir_put_tensor(KirPrinter *p, const KnTensor *t, bool print_name);
KnStatus kir_put_attr(KirPrinter *p, const KnAttr *a, int indent);
KnStatus kir_put_graph(KirPrinter *p, const KnGraph *g, int indent);

/* ---- weights planning (frontend/kir_weights.c) ------------------------------------------- */
/* Where each large tensor is printed: kept at its current safetensors reference, or written
 * under a fresh key into the output weights file. */
typedef struct KirWeightsOpts {
  int64_t inline_max; /* larger tensors print as references; -1: everything inline */
  const char *file;   /* reference path printed for tensors without one of their own */
  bool keep_refs;     /* tensors already in a safetensors file keep that reference */
  bool writing;       /* file is being rewritten, so references into it are re-planned */
} KirWeightsOpts;

KnStatus kir_weights_plan(const KnGraph *g, const KirWeightsOpts *o, KirWeights **out,
                          KnError *err);
void kir_weights_free(KirWeights *w);
/* How t prints: false = inline; true = reference (*file, *key set). */
bool kir_weights_ref(const KirWeights *w, const KnTensor *t, const char **file, const char **key);
/* The tensors to write into the output file and their keys (parallel arrays). */
int kir_weights_to_write(const KirWeights *w, KnTensor *const **tensors, const char *const **keys);
/* Prints m with a weights plan; hands the plan to *plan_out (may be NULL) on success. */
KnStatus kir_print_planned(FILE *f, const KnModel *m, const KirWeightsOpts *wopt,
                           KirWeights **plan_out, KnError *err);
/* True when t's location names a safetensors file (as the .kir parser sets it). */
bool kir_is_st_ref(const KnTensor *t);

/* ---- safetensors (frontend/safetensors.c) ----------------------------------------------- */
const char *st_dtype_name(KnDtype t); /* "F32", or NULL if safetensors has no such dtype */
KnStatus st_write_named(const char *path, KnTensor *const *tensors, const char *const *names,
                        int n, KnError *err);

#endif
