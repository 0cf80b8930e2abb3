/* kir_lex.c - the .kir tokenizer: identifiers, %values, strings, numbers and punctuation, each
 * token carrying its line and column for error messages. */
#include <string.h>

#include "frontend/kir_internal.h"

void kir_lex_init(KirLexer *lx, const char *text, size_t len, const char *path, KnError *err) {
  *lx = (KirLexer){.path = path, .cur = text, .end = text + len, .line_start = text, .line = 1,
                   .err = err};
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) /* a UTF-8 byte order mark */
    lx->cur = lx->line_start = text + 3;
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static bool is_ident_char(int c) { return is_alpha(c) || is_digit(c) || c == '.'; }

bool kir_is_value_char(int c) { return is_ident_char(c) || c == '/' || c == '-'; }

static int col_of(const KirLexer *lx, const char *p) { return (int)(p - lx->line_start) + 1; }

static KirTok lex_fail(KirLexer *lx, const char *at, const char *what) {
  kn_fail(lx->err, KN_ERR_FORMAT, "%s:%d:%d: %s", lx->path, lx->line, col_of(lx, at), what);
  return (KirTok){.kind = KT_ERROR, .p = at, .line = lx->line, .col = col_of(lx, at)};
}

/* Skips blanks, newlines and '#' comments, counting lines. */
static void skip_space(KirLexer *lx) {
  while (lx->cur < lx->end) {
    char c = *lx->cur;
    if (c == '\n') {
      lx->line++;
      lx->line_start = ++lx->cur;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      lx->cur++;
    } else if (c == '#') {
      while (lx->cur < lx->end && *lx->cur != '\n') lx->cur++;
    } else {
      return;
    }
  }
}

/* A string body: checks escapes and refuses raw control bytes, so decoding cannot fail. */
static KirTok lex_string(KirLexer *lx, KirTokKind kind, const char *start) {
  const char *p = lx->cur + 1;
  while (p < lx->end && *p != '"') {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f) return lex_fail(lx, p, "control character in string (use \\xHH)");
    if (c != '\\') {
      p++;
      continue;
    }
    if (p + 1 >= lx->end) break;
    char e = p[1];
    if (e == 'x') {
      if (p + 3 >= lx->end || !is_hex(p[2]) || !is_hex(p[3]))
        return lex_fail(lx, p, "\\x needs two hex digits");
      p += 4;
    } else if (strchr("\\\"ntr", e) && e) {
      p += 2;
    } else {
      return lex_fail(lx, p, "unknown escape in string");
    }
  }
  if (p >= lx->end) return lex_fail(lx, start, "unterminated string");
  KirTok t = {kind, start, (size_t)(p + 1 - start), lx->line, col_of(lx, start)};
  if (kind == KT_VALUE) t.p++, t.len--;
  lx->cur = p + 1;
  return t;
}

static KirTok lex_number(KirLexer *lx) {
  const char *s = lx->cur, *p = s;
  if (*p == '-') p++;
  if (p + 1 < lx->end && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    p += 2;
    while (p < lx->end && is_hex(*p)) p++;
  } else {
    while (p < lx->end && (is_ident_char(*p) ||
                           ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E'))))
      p++;
  }
  if (p < lx->end && is_ident_char(*p)) return lex_fail(lx, s, "malformed number");
  lx->cur = p;
  return (KirTok){KT_NUMBER, s, (size_t)(p - s), lx->line, col_of(lx, s)};
}

static KirTok lex_value(KirLexer *lx) {
  const char *s = lx->cur;
  lx->cur++;
  if (lx->cur < lx->end && *lx->cur == '"') return lex_string(lx, KT_VALUE, s);
  const char *p = lx->cur;
  while (p < lx->end && kir_is_value_char(*p)) p++;
  if (p == lx->cur) return lex_fail(lx, s, "expected a value name after '%'");
  KirTok t = {KT_VALUE, lx->cur, (size_t)(p - lx->cur), lx->line, col_of(lx, s)};
  lx->cur = p;
  return t;
}

KirTok kir_lex_next(KirLexer *lx) {
  skip_space(lx);
  const char *s = lx->cur;
  if (s >= lx->end) return (KirTok){KT_EOF, s, 0, lx->line, col_of(lx, s)};
  char c = *s;
  if (c == '"') return lex_string(lx, KT_STRING, s);
  if (c == '%') return lex_value(lx);
  if (is_digit(c) || (c == '-' && s + 1 < lx->end && is_digit(s[1]))) return lex_number(lx);
  if (is_alpha(c)) {
    const char *p = s;
    while (p < lx->end && is_ident_char(*p)) p++;
    lx->cur = p;
    return (KirTok){KT_IDENT, s, (size_t)(p - s), lx->line, col_of(lx, s)};
  }
  if (c == ':' && s + 1 < lx->end && s[1] == ':') {
    lx->cur += 2;
    return (KirTok){KT_PUNCT, s, 2, lx->line, col_of(lx, s)};
  }
  if (c && strchr("(){}[]<>,:=@*?-", c)) {
    lx->cur++;
    return (KirTok){KT_PUNCT, s, 1, lx->line, col_of(lx, s)};
  }
  return lex_fail(lx, s, "unexpected character");
}

bool kir_tok_is(const KirTok *t, KirTokKind kind, const char *text) {
  return t->kind == kind && strlen(text) == t->len && memcmp(t->p, text, t->len) == 0;
}

bool kir_tok_punct(const KirTok *t, char c) {
  return t->kind == KT_PUNCT && t->len == 1 && t->p[0] == c;
}

static int hex_val(char c) {
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}

bool kir_decode_string(KnArena *a, const KirTok *t, KnBytes *out) {
  bool quoted = t->len >= 2 && t->p[0] == '"';
  if (!quoted) {
    char *s = ir_arena_strndup(a, t->p, t->len);
    *out = (KnBytes){s, t->len};
    return s != NULL;
  }
  char *buf = ir_arena_alloc(a, t->len);
  if (!buf) return false;
  size_t n = 0;
  for (const char *p = t->p + 1, *e = t->p + t->len - 1; p < e;) {
    if (*p != '\\') {
      buf[n++] = *p++;
      continue;
    }
    char c = p[1];
    if (c == 'x') {
      buf[n++] = (char)(hex_val(p[2]) * 16 + hex_val(p[3]));
      p += 4;
      continue;
    }
    buf[n++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    p += 2;
  }
  buf[n] = 0;
  *out = (KnBytes){buf, n};
  return true;
}
