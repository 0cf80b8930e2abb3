/* kir_parse_value.c - reading .kir numbers, types and tensor literals (inline, hex, or a
 * reference into a safetensors file), with every count range- and overflow-checked. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/kir_internal.h"

#define KIR_MAX_RANK 4096

/* ---- numbers ----------------------------------------------------------------------------- */

/* -?[0-9]+ into a magnitude and a sign; false if malformed or past 2^64-1. */
static bool decimal(const KirTok *t, uint64_t *mag, bool *neg) {
  const char *p = t->p, *e = t->p + t->len;
  *neg = p < e && *p == '-';
  if (*neg) p++;
  if (t->kind != KT_NUMBER || p == e) return false;
  uint64_t v = 0;
  for (; p < e; p++) {
    if (*p < '0' || *p > '9') return false;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *mag = v;
  return true;
}

/* An integer in [lo, hi], returned as its two's-complement bits. */
static KnStatus int_in_range(KirParser *P, const char *what, int64_t lo, uint64_t hi, uint64_t *bits) {
  uint64_t mag;
  bool neg;
  if (!decimal(&P->tok, &mag, &neg)) {
    bool digits = P->tok.kind == KT_NUMBER && P->tok.len > 0;
    for (size_t i = P->tok.p[0] == '-'; digits && i < P->tok.len; i++)
      digits = P->tok.p[i] >= '0' && P->tok.p[i] <= '9';
    if (P->tok.kind == KT_NUMBER)
      return kp_fail(P, &P->tok, KN_ERR_FORMAT, digits ? "%s '%.*s' is out of range" : "expected %s, found '%.*s'",
                     what, P->tok.len > 24 ? 24 : (int)P->tok.len, P->tok.p);
    return kp_fail(P, &P->tok, KN_ERR_FORMAT, "expected %s", what);
  }
  uint64_t lo_mag = lo < 0 ? (uint64_t)(-(lo + 1)) + 1 : 0;
  if (neg ? mag > lo_mag : mag > hi)
    return kp_fail(P, &P->tok, KN_ERR_FORMAT, "%s '%.*s' is out of range", what,
                   P->tok.len > 24 ? 24 : (int)P->tok.len, P->tok.p);
  *bits = neg ? (uint64_t)0 - mag : mag;
  kp_next(P);
  return KN_OK;
}

KnStatus kp_int(KirParser *P, const char *what, int64_t *out) {
  uint64_t bits;
  KnStatus st = int_in_range(P, what, INT64_MIN, INT64_MAX, &bits);
  if (!st) memcpy(out, &bits, sizeof *out);
  return st;
}

static bool float_text(const KirTok *t) {
  if (t->kind != KT_NUMBER || memchr(t->p, 'x', t->len) || memchr(t->p, 'X', t->len)) return false;
  return memchr(t->p, '.', t->len) || memchr(t->p, 'e', t->len) || memchr(t->p, 'E', t->len);
}

bool kp_at_float(const KirParser *P) {
  return float_text(&P->tok) || kir_tok_punct(&P->tok, '-') || kp_at(P, "inf") || kp_at(P, "nan");
}

typedef struct FloatBits {
  KnDtype dtype;
  int bytes;
  uint64_t inf, nan, sign, exp;
} FloatBits;

static const FloatBits float_bits[] = {
    {KN_F32, 4, 0x7f800000u, 0x7fc00000u, 0x80000000u, 0x7f800000u},
    {KN_F64, 8, 0x7ff0000000000000ull, 0x7ff8000000000000ull, 0x8000000000000000ull, 0x7ff0000000000000ull},
    {KN_F16, 2, 0x7c00, 0x7e00, 0x8000, 0x7c00},
    {KN_BF16, 2, 0x7f80, 0x7fc0, 0x8000, 0x7f80},
};

static void store(void *dst, int bytes, uint64_t bits) {
  if (bytes == 8) memcpy(dst, &bits, 8);
  else if (bytes == 4) memcpy(dst, &(uint32_t){(uint32_t)bits}, 4);
  else if (bytes == 2) memcpy(dst, &(uint16_t){(uint16_t)bits}, 2);
  else *(uint8_t *)dst = (uint8_t)bits;
}

/* nan, -nan or nan(0xBITS); the current token is "nan". */
static KnStatus parse_nan(KirParser *P, const FloatBits *fb, bool neg, void *dst) {
  kp_next(P);
  if (!kp_accept(P, '(')) {
    store(dst, fb->bytes, fb->nan | (neg ? fb->sign : 0));
    return KN_OK;
  }
  KirTok at = P->tok;
  uint64_t bits = 0;
  bool ok = !neg && at.kind == KT_NUMBER && at.len > 2 && at.len <= 2 + 2 * (size_t)fb->bytes &&
            at.p[0] == '0' && (at.p[1] == 'x' || at.p[1] == 'X');
  for (size_t i = 2; ok && i < at.len; i++) {
    char c = at.p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
    bits = bits << 4 | (uint64_t)d;
  }
  uint64_t mant = bits & ~(fb->exp | fb->sign);
  if (!ok || (bits & fb->exp) != fb->exp || !mant)
    return kp_fail(P, &at, KN_ERR_FORMAT, "expected the bits of a %s NaN in nan(0x...)", ir_dtype_name(fb->dtype));
  kp_next(P);
  store(dst, fb->bytes, bits);
  return kp_expect(P, ')', "after the NaN bits");
}

/* A decimal literal, rounded as strtof/strtod do; overflow to infinity is an error. */
static KnStatus parse_decimal(KirParser *P, const FloatBits *fb, void *dst) {
  KirTok at = P->tok;
  char buf[64];
  if (at.kind != KT_NUMBER || at.len >= sizeof buf || memchr(at.p, 'x', at.len) || memchr(at.p, 'X', at.len))
    return kp_fail(P, &at, KN_ERR_FORMAT, "expected a floating-point number");
  memcpy(buf, at.p, at.len);
  buf[at.len] = 0;
  char *end;
  double d = 0;
  float f = 0;
  if (fb->dtype == KN_F64) d = strtod(buf, &end);
  else f = strtof(buf, &end);
  uint16_t h = fb->dtype == KN_F16 ? ir_f32_to_f16(f) : ir_f32_to_bf16(f);
  bool inf = fb->dtype == KN_F64 ? isinf(d) : isinf(f) || (fb->bytes == 2 && (h & fb->exp) == fb->exp);
  if (end != buf + at.len || inf)
    return kp_fail(P, &at, KN_ERR_FORMAT, "'%s' is not a finite %s number", buf, ir_dtype_name(fb->dtype));
  if (fb->dtype == KN_F64) memcpy(dst, &d, 8);
  else if (fb->dtype == KN_F32) memcpy(dst, &f, 4);
  else memcpy(dst, &h, 2);
  kp_next(P);
  return KN_OK;
}

KnStatus kp_float(KirParser *P, KnDtype dt, void *dst) {
  const FloatBits *fb = NULL;
  for (size_t i = 0; i < sizeof float_bits / sizeof *float_bits; i++)
    if (float_bits[i].dtype == dt) fb = &float_bits[i];
  if (!fb) return kp_fail(P, &P->tok, KN_ERR_INTERNAL, "kp_float: dtype %d is not a float", (int)dt);
  bool neg = kp_accept(P, '-');
  if (kp_at(P, "inf")) {
    kp_next(P);
    store(dst, fb->bytes, fb->inf | (neg ? fb->sign : 0));
    return KN_OK;
  }
  if (kp_at(P, "nan")) return parse_nan(P, fb, neg, dst);
  if (neg) return kp_fail(P, &P->tok, KN_ERR_FORMAT, "expected 'inf' or 'nan' after '-'");
  return parse_decimal(P, fb, dst);
}

/* ---- types ------------------------------------------------------------------------------- */

static KnStatus parse_dtype(KirParser *P, bool allow_undef, KnDtype *out) {
  char name[24];
  KirTok at = P->tok;
  if (at.kind == KT_IDENT && at.len < sizeof name) {
    snprintf(name, sizeof name, "%.*s", (int)at.len, at.p);
    if (ir_dtype_from_name(name, out) || (allow_undef && strcmp(name, "undef") == 0 && (*out = KN_UNDEF, true))) {
      kp_next(P);
      return KN_OK;
    }
  }
  return kp_fail(P, &at, KN_ERR_FORMAT, "expected an element type (f32, i64, ...), found '%.*s'",
                 at.len > 24 ? 24 : (int)at.len, at.p);
}

static KnStatus parse_dim(KirParser *P, KnDim *d) {
  *d = IR_DIM_UNKNOWN;
  if (kp_accept(P, '?')) return KN_OK;
  if (P->tok.kind == KT_NUMBER) {
    KirTok at = P->tok;
    KnStatus st = kp_int(P, "a dimension", &d->value);
    if (!st && d->value < 0) st = kp_fail(P, &at, KN_ERR_FORMAT, "a dimension cannot be negative");
    return st;
  }
  if (P->tok.kind == KT_IDENT) {
    d->sym = ir_arena_strndup(P->a, P->tok.p, P->tok.len);
    kp_next(P);
    return d->sym ? KN_OK : kp_nomem(P);
  }
  return kp_cstring(P, "a dimension (number, name, \"name\" or ?)", &d->sym);
}

static KnStatus parse_shape(KirParser *P, KnShape *s) {
  KnStatus st = kp_expect(P, '[', "to open a shape");
  int cap = 0;
  s->rank = 0;
  s->dims = NULL;
  if (st || kp_accept(P, ']')) return st;
  if (kp_accept(P, '*')) {
    s->rank = -1;
    return kp_expect(P, ']', "after '*' (unknown rank)");
  }
  do {
    KnDim d;
    if (s->rank >= KIR_MAX_RANK) return kp_fail(P, &P->tok, KN_ERR_LIMIT, "more than %d dims", KIR_MAX_RANK);
    if ((st = parse_dim(P, &d))) return st;
    if (!IR_PUSH(P->a, s->dims, s->rank, cap, d)) return kp_nomem(P);
  } while (kp_accept(P, ','));
  return kp_expect(P, ']', "to close a shape");
}

static KnStatus parse_container(KirParser *P, KnType *out, int depth) {
  bool map = kp_at(P, "map");
  out->kind = map ? KN_TYPE_MAP : kp_at(P, "seq") ? KN_TYPE_SEQUENCE : KN_TYPE_OPTIONAL;
  kp_next(P);
  KnStatus st = kp_expect(P, '<', "after seq/opt/map");
  if (!st && map) st = parse_dtype(P, true, &out->key_dtype);
  if (!st && map) st = kp_expect(P, ',', "after the map key type");
  if (st) return st;
  out->elem = ir_arena_alloc(P->a, sizeof *out->elem);
  if (!out->elem) return kp_nomem(P);
  st = kp_type(P, out->elem, depth + 1);
  return st ? st : kp_expect(P, '>', "to close the type");
}

KnStatus kp_type(KirParser *P, KnType *out, int depth) {
  *out = (KnType){.shape.rank = -1};
  if (depth > KIR_MAX_TYPE_DEPTH)
    return kp_fail(P, &P->tok, KN_ERR_LIMIT, "types nested deeper than %d", KIR_MAX_TYPE_DEPTH);
  if (kp_accept(P, '?')) return KN_OK;
  if (kp_at(P, "seq") || kp_at(P, "opt") || kp_at(P, "map")) return parse_container(P, out, depth);
  out->kind = KN_TYPE_TENSOR;
  if (kp_at(P, "sparse")) {
    out->kind = KN_TYPE_SPARSE;
    kp_next(P);
  }
  KnStatus st = parse_dtype(P, true, &out->dtype);
  return st ? st : parse_shape(P, &out->shape);
}

/* ---- tensors ----------------------------------------------------------------------------- */

KnStatus kp_dims(KirParser *P, int *rank, int64_t **dims) {
  KnStatus st = kp_expect(P, '[', "to open the tensor dims");
  int cap = 0;
  *rank = 0;
  *dims = NULL;
  if (st || kp_accept(P, ']')) return st;
  do {
    int64_t d;
    if (*rank >= KIR_MAX_RANK) return kp_fail(P, &P->tok, KN_ERR_LIMIT, "more than %d dims", KIR_MAX_RANK);
    KirTok at = P->tok;
    if ((st = kp_int(P, "a tensor dim", &d))) return st;
    if (d < 0) return kp_fail(P, &at, KN_ERR_FORMAT, "a tensor dim cannot be negative");
    if (!IR_PUSH(P->a, *dims, *rank, cap, d)) return kp_nomem(P);
  } while (kp_accept(P, ','));
  return kp_expect(P, ']', "to close the tensor dims");
}

typedef struct IntRange {
  KnDtype dtype;
  int64_t lo;
  uint64_t hi;
} IntRange;

static const IntRange int_ranges[] = {
    {KN_I8, INT8_MIN, INT8_MAX},     {KN_U8, 0, UINT8_MAX},   {KN_I16, INT16_MIN, INT16_MAX},
    {KN_U16, 0, UINT16_MAX},         {KN_I32, INT32_MIN, INT32_MAX}, {KN_U32, 0, UINT32_MAX},
    {KN_I64, INT64_MIN, INT64_MAX},  {KN_U64, 0, UINT64_MAX}, {KN_BOOL, 0, UINT8_MAX},
    {KN_I4, -8, 7},                  {KN_U4, 0, 15},
};

static KnStatus parse_elem(KirParser *P, KnTensor *t, int64_t i) {
  unsigned char *p = t->data;
  KnDtype dt = t->dtype;
  if (dt == KN_F32 || dt == KN_F64 || dt == KN_F16 || dt == KN_BF16)
    return kp_float(P, dt, p + (size_t)i * (size_t)(ir_dtype_bits(dt) / 8));
  if (dt == KN_STRING) return kp_string(P, "a string element", (KnBytes *)t->data + i);
  for (size_t k = 0; k < sizeof int_ranges / sizeof *int_ranges; k++) {
    const IntRange *r = &int_ranges[k];
    uint64_t bits;
    if (r->dtype != dt) continue;
    char what[32];
    snprintf(what, sizeof what, "%s element", ir_dtype_name(dt));
    KnStatus st = int_in_range(P, what, r->lo, r->hi, &bits);
    if (st) return st;
    if (dt == KN_I4 || dt == KN_U4) p[i / 2] |= (unsigned char)((bits & 0xf) << (4 * (i % 2)));
    else store(p + (size_t)i * (size_t)(ir_dtype_bits(dt) / 8), ir_dtype_bits(dt) / 8, bits);
    return KN_OK;
  }
  return kp_fail(P, &P->tok, KN_ERR_FORMAT, "%s tensors are written as hex\"...\"", ir_dtype_name(dt));
}

static KnStatus parse_elems(KirParser *P, KnTensor *t) {
  KirTok open = P->tok;
  KnStatus st = kp_expect(P, '[', "to open the tensor data");
  for (int64_t i = 0; i < t->numel && !st; i++) {
    if (kir_tok_punct(&P->tok, ']'))
      return kp_fail(P, &open, KN_ERR_FORMAT, "the tensor has %lld elements but the data gives %lld",
                     (long long)t->numel, (long long)i);
    if (i) st = kp_expect(P, ',', "between tensor elements");
    if (!st) st = parse_elem(P, t, i);
  }
  if (!st && kir_tok_punct(&P->tok, ','))
    return kp_fail(P, &open, KN_ERR_FORMAT, "the data has more than the tensor's %lld elements", (long long)t->numel);
  return st ? st : kp_expect(P, ']', "to close the tensor data");
}

static int hex_digit(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static KnStatus parse_hex(KirParser *P, KnTensor *t) {
  kp_next(P);
  KirTok at = P->tok;
  KnBytes b;
  KnStatus st = kp_string(P, "a hex string", &b);
  if (st) return st;
  if (t->dtype == KN_STRING || b.len != 2 * t->nbytes)
    return kp_fail(P, &at, KN_ERR_FORMAT, "hex data must give the tensor's %zu bytes", t->nbytes);
  unsigned char *p = t->data;
  for (size_t i = 0; i < t->nbytes; i++) {
    int hi = hex_digit(b.data[2 * i]), lo = hex_digit(b.data[2 * i + 1]);
    if (hi < 0 || lo < 0) return kp_fail(P, &at, KN_ERR_FORMAT, "hex data holds a non-hex character");
    p[i] = (unsigned char)(hi * 16 + lo);
  }
  return KN_OK;
}

static int by_name(const void *x, const void *y) {
  return strcmp((*(KnTensor *const *)x)->name, (*(KnTensor *const *)y)->name);
}

/* Reads a referenced safetensors file once per parse. */
static KnStatus load_st(KirParser *P, const KirTok *at, const char *rel, KirStFile **out) {
  for (int i = 0; i < P->n_files; i++)
    if (strcmp(P->files[i].rel, rel) == 0) return (*out = &P->files[i]), KN_OK;
  if (!P->dir)
    return kp_fail(P, at, KN_ERR_INVALID, "safetensors reference '%s' needs the .kir's folder", rel);
  char full[PATH_MAX];
  KnError local = {0};
  KirStFile f = {.rel = rel};
  if (fe_resolve_inside(P->dir, rel, full, sizeof full, &local) ||
      st_read(P->a, full, &f.by_name, &f.n, &local))
    return kp_fail(P, at, local.status, "%s", local.msg);
  qsort(f.by_name, (size_t)f.n, sizeof *f.by_name, by_name);
  if (!IR_PUSH(P->a, P->files, P->n_files, P->cap_files, f)) return kp_nomem(P);
  *out = &P->files[P->n_files - 1];
  return KN_OK;
}

static KnStatus parse_ref(KirParser *P, const KnTensor *want, KnTensor **out) {
  kp_next(P);
  KirTok at = P->tok;
  const char *rel, *key;
  KirStFile *f;
  KnStatus st = kp_cstring(P, "a safetensors file name", &rel);
  if (!st) st = kp_expect(P, '[', "after the safetensors file name");
  if (!st) st = kp_cstring(P, "a tensor key", &key);
  if (!st) st = kp_expect(P, ']', "after the tensor key");
  if (!st) st = load_st(P, &at, rel, &f);
  if (st) return st;
  KnTensor probe = {.name = key}, *pp = &probe;
  KnTensor **hit = bsearch(&pp, f->by_name, (size_t)f->n, sizeof *f->by_name, by_name);
  if (!hit) return kp_fail(P, &at, KN_ERR_INVALID, "'%s' has no tensor '%s'", rel, key);
  const KnTensor *e = *hit;
  bool same = e->dtype == want->dtype && e->rank == want->rank;
  for (int i = 0; same && i < e->rank; i++) same = e->dims[i] == want->dims[i];
  if (!same)
    return kp_fail(P, &at, KN_ERR_INVALID, "tensor '%s' in '%s' does not have the declared dtype and shape",
                   key, rel);
  KnTensor *t = ir_arena_alloc(P->a, sizeof *t);
  if (!t) return kp_nomem(P);
  *t = *e;
  t->location = rel;
  *out = t;
  return KN_OK;
}

static KnStatus parse_inline(KirParser *P, const KnTensor *want, KnTensor **out) {
  /* Every element takes at least one character: a short file cannot ask for a huge tensor. */
  size_t left = (size_t)(P->lx.end - P->lx.cur) + P->tok.len;
  if ((uint64_t)want->numel > left)
    return kp_fail(P, &P->tok, KN_ERR_FORMAT, "the tensor has %lld elements but the file is shorter",
                   (long long)want->numel);
  KnError local = {0};
  KnTensor *t = ir_tensor_new(P->a, want->dtype, want->rank, want->dims, &local);
  if (!t) return kp_fail(P, &P->tok, local.status, "%s", local.msg);
  *out = t;
  if (kp_at(P, "hex")) return parse_hex(P, t);
  if (kir_tok_punct(&P->tok, '[')) return parse_elems(P, t);
  return kp_fail(P, &P->tok, KN_ERR_FORMAT, "expected tensor data: [...], hex\"...\" or @\"file\"[\"key\"]");
}

KnStatus kp_tensor(KirParser *P, KnTensor **out) {
  KirTok at = P->tok;
  KnTensor want = {0};
  KnStatus st = parse_dtype(P, false, &want.dtype);
  if (!st) st = kp_dims(P, &want.rank, &want.dims);
  if (st) return st;
  want.numel = 1;
  for (int i = 0; i < want.rank; i++)
    if (ir_mul_overflows(want.numel, want.dims[i], &want.numel) || want.numel > P->lim.max_tensor_elems)
      return kp_fail(P, &at, KN_ERR_LIMIT, "tensor has more than %lld elements", (long long)P->lim.max_tensor_elems);
  bool ref = kir_tok_punct(&P->tok, '@');
  st = ref ? parse_ref(P, &want, out) : parse_inline(P, &want, out);
  if (st) return st;
  if (ref && kp_at(P, "name"))
    return kp_fail(P, &P->tok, KN_ERR_FORMAT, "a referenced tensor is named by its key");
  if (!ref) st = kp_clause(P, "name", &(*out)->name);
  return st ? st : kp_clause(P, "doc", &(*out)->doc);
}
