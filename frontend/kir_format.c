/* kir_format.c - the canonical spellings .kir uses for names, strings and floating-point
 * numbers, shared by the printer (which writes them) and the parser (which must agree). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/kir_internal.h"

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_alnum(int c) { return is_alpha(c) || (c >= '0' && c <= '9') || c == '.'; }

bool kir_is_ident(const char *s, size_t len) {
  if (len == 0 || !is_alpha((unsigned char)s[0])) return false;
  for (size_t i = 1; i < len; i++)
    if (!is_alnum((unsigned char)s[i])) return false;
  return true;
}

bool kir_is_value_name(const char *s, size_t len) {
  if (len == 0) return false;
  for (size_t i = 0; i < len; i++)
    if (!kir_is_value_char((unsigned char)s[i])) return false;
  return true;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || n > left) return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (c == 0xe0 && s[1] < 0xa0) return 0; /* overlong */
  if (c == 0xed && s[1] > 0x9f) return 0; /* surrogate */
  if (c == 0xf0 && s[1] < 0x90) return 0; /* overlong */
  if (c == 0xf4 && s[1] > 0x8f) return 0; /* past U+10FFFF */
  return n;
}

/* Printable ASCII and valid UTF-8 go out as they are, everything else as an escape, so the
 * output is always valid UTF-8 and one canonical spelling exists for any byte string. */
void kir_put_string(FILE *f, const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  fputc('"', f);
  for (size_t i = 0; i < len;) {
    unsigned char c = u[i];
    size_t n;
    if (c == '"' || c == '\\') {
      fprintf(f, "\\%c", c);
    } else if (c == '\n') {
      fputs("\\n", f);
    } else if (c == '\t') {
      fputs("\\t", f);
    } else if (c == '\r') {
      fputs("\\r", f);
    } else if (c >= 0x20 && c < 0x7f) {
      fputc(c, f);
    } else if (c >= 0x80 && (n = utf8_len(u + i, len - i)) > 0) {
      fwrite(u + i, 1, n, f);
      i += n;
      continue;
    } else {
      fprintf(f, "\\x%02x", c);
    }
    i++;
  }
  fputc('"', f);
}

void kir_put_value_name(FILE *f, const char *name) {
  size_t len = strlen(name);
  fputc('%', f);
  if (kir_is_value_name(name, len)) fputs(name, f);
  else kir_put_string(f, name, len);
}

/* Appends ".0" when the number would otherwise read as an integer. */
static void float_look(char *buf) {
  if (!strpbrk(buf, ".e")) strcat(buf, ".0");
}

/* Prints v with prec digits into buf; true if that reads back as the same bits. */
static bool f32_round_trips(char *buf, int prec, float v, uint32_t bits) {
  snprintf(buf, KIR_FLOAT_BUF, "%.*g", prec, (double)v);
  float r = strtof(buf, NULL);
  uint32_t back;
  memcpy(&back, &r, 4);
  return back == bits;
}

void kir_fmt_f32(char *buf, float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  if (isnan(v)) {
    if (bits == 0x7fc00000u) strcpy(buf, "nan");
    else if (bits == 0xffc00000u) strcpy(buf, "-nan");
    else snprintf(buf, KIR_FLOAT_BUF, "nan(0x%08x)", (unsigned)bits);
    return;
  }
  if (isinf(v)) {
    strcpy(buf, v > 0 ? "inf" : "-inf");
    return;
  }
  /* Weights mostly need 8 or 9 digits, so probe 8 first, then walk down. If any precision
   * below 6 round-trips, %.6g prints those same digits (%g drops trailing zeros), so
   * stopping at 6 still gives the shortest form. */
  char alt[KIR_FLOAT_BUF];
  if (!f32_round_trips(buf, 8, v, bits)) {
    snprintf(buf, KIR_FLOAT_BUF, "%.9g", (double)v);
  } else {
    for (int prec = 7; prec >= 6 && f32_round_trips(alt, prec, v, bits); prec--) strcpy(buf, alt);
  }
  float_look(buf);
}

void kir_fmt_f64(char *buf, double v) {
  uint64_t bits, back;
  memcpy(&bits, &v, 8);
  if (isnan(v)) {
    if (bits == 0x7ff8000000000000ull) strcpy(buf, "nan");
    else if (bits == 0xfff8000000000000ull) strcpy(buf, "-nan");
    else snprintf(buf, KIR_FLOAT_BUF, "nan(0x%016llx)", (unsigned long long)bits);
    return;
  }
  if (isinf(v)) {
    strcpy(buf, v > 0 ? "inf" : "-inf");
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, KIR_FLOAT_BUF, "%.*g", prec, v);
    double r = strtod(buf, NULL);
    memcpy(&back, &r, 8);
    if (back == bits) break;
  }
  float_look(buf);
}

void kir_fmt_half(char *buf, uint16_t bits, bool bf16) {
  uint16_t exp_mask = bf16 ? 0x7f80 : 0x7c00, canon = bf16 ? 0x7fc0 : 0x7e00;
  bool special = (bits & exp_mask) == exp_mask;
  bool nan = special && (bits & (uint16_t)~(exp_mask | 0x8000));
  if (nan) {
    if (bits == canon) strcpy(buf, "nan");
    else if (bits == (canon | 0x8000)) strcpy(buf, "-nan");
    else snprintf(buf, KIR_FLOAT_BUF, "nan(0x%04x)", (unsigned)bits);
    return;
  }
  if (special) {
    strcpy(buf, bits & 0x8000 ? "-inf" : "inf");
    return;
  }
  float v = bf16 ? ir_bf16_to_f32(bits) : ir_f16_to_f32(bits);
  for (int prec = 1; prec <= 9; prec++) {
    snprintf(buf, KIR_FLOAT_BUF, "%.*g", prec, (double)v);
    float r = strtof(buf, NULL);
    if ((bf16 ? ir_f32_to_bf16(r) : ir_f32_to_f16(r)) == bits) break;
  }
  float_look(buf);
}
