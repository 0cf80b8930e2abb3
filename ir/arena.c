/* arena.c - the bump allocator that owns a model's IR, and checked size arithmetic. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

#define ARENA_ALIGN 64
#define CHUNK_BYTES (256 * 1024)

typedef struct Chunk {
  struct Chunk *next;
  size_t used, size;
  _Alignas(ARENA_ALIGN) unsigned char data[];
} Chunk;

/* A large allocation on its own, from calloc: big sizes come as fresh zero pages from the
 * kernel, so they are not written twice (a memset would fault in every page of the packed
 * weights before the pass fills them). The data starts at the first aligned byte after it. */
typedef struct Big {
  struct Big *next;
} Big;

typedef struct Cleanup {
  struct Cleanup *next;
  void (*fn)(void *ctx);
  void *ctx;
} Cleanup;

struct KnArena {
  Chunk *head;       /* current chunk for small allocations */
  Big *big;          /* large allocations, one each */
  Cleanup *cleanups; /* run in reverse order of registration on free */
  size_t bytes;      /* handed out so far */
  size_t limit;      /* 0 = unlimited */
};

KnArena *ir_arena_new(void) { return calloc(1, sizeof(KnArena)); }

static void free_chunks(Chunk *c) {
  while (c) {
    Chunk *next = c->next;
    free(c);
    c = next;
  }
}

void ir_arena_free(KnArena *a) {
  if (!a) return;
  for (Cleanup *c = a->cleanups; c;) {
    Cleanup *next = c->next;
    c->fn(c->ctx);
    free(c);
    c = next;
  }
  free_chunks(a->head);
  for (Big *b = a->big; b;) {
    Big *next = b->next;
    free(b);
    b = next;
  }
  free(a);
}

static Chunk *chunk_new(size_t size) {
  if (size > SIZE_MAX - sizeof(Chunk) - ARENA_ALIGN) return NULL; /* the rounding below must not wrap */
  Chunk *c = aligned_alloc(ARENA_ALIGN, (sizeof(Chunk) + size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1));
  if (!c) return NULL;
  c->next = NULL;
  c->used = 0;
  c->size = size;
  return c;
}

void *ir_arena_alloc(KnArena *a, size_t size) {
  if (size == 0) size = 1;
  if (size > SIZE_MAX - ARENA_ALIGN) return NULL;
  size_t rounded = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (a->limit && (rounded > a->limit || a->bytes > a->limit - rounded)) return NULL;
  void *p;
  if (rounded > CHUNK_BYTES / 4) { /* large: its own block, so small ones keep packing */
    if (rounded > SIZE_MAX - sizeof(Big) - ARENA_ALIGN) return NULL;
    Big *b = calloc(1, sizeof(Big) + ARENA_ALIGN + rounded);
    if (!b) return NULL;
    b->next = a->big;
    a->big = b;
    a->bytes += rounded;
    uintptr_t at = ((uintptr_t)(b + 1) + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
    return (void *)at; /* calloc zeroed it */
  } else {
    if (!a->head || a->head->size - a->head->used < rounded) {
      Chunk *c = chunk_new(CHUNK_BYTES);
      if (!c) return NULL;
      c->next = a->head;
      a->head = c;
    }
    p = a->head->data + a->head->used;
    a->head->used += rounded;
  }
  a->bytes += rounded;
  memset(p, 0, size);
  return p;
}

void *ir_arena_calloc(KnArena *a, size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  return ir_arena_alloc(a, count * size);
}

char *ir_arena_strndup(KnArena *a, const char *s, size_t n) {
  char *p = ir_arena_alloc(a, n + 1);
  if (p) memcpy(p, s, n);
  return p;
}

char *ir_arena_strdup(KnArena *a, const char *s) { return ir_arena_strndup(a, s, strlen(s)); }

char *ir_arena_printf(KnArena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *p = ir_arena_alloc(a, (size_t)n + 1);
  if (!p) return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

bool ir_arena_on_free(KnArena *a, void (*fn)(void *ctx), void *ctx) {
  Cleanup *c = malloc(sizeof *c);
  if (!c) return false;
  *c = (Cleanup){a->cleanups, fn, ctx};
  a->cleanups = c;
  return true;
}

void ir_arena_set_limit(KnArena *a, size_t max_bytes) { a->limit = max_bytes; }
size_t ir_arena_room(const KnArena *a) { return a->limit ? (a->bytes < a->limit ? a->limit - a->bytes : 0) : SIZE_MAX; }

size_t ir_arena_bytes(const KnArena *a) { return a->bytes; }

bool ir_grow(KnArena *a, void **items, int *cap, int need, size_t item_size) {
  if (need <= *cap) return true;
  if (need < 0 || need > INT32_MAX / 2) return false;
  int new_cap = *cap ? *cap : 4;
  while (new_cap < need) new_cap *= 2;
  void *p = ir_arena_calloc(a, (size_t)new_cap, item_size);
  if (!p) return false;
  if (*items && *cap) memcpy(p, *items, (size_t)*cap * item_size);
  *items = p;
  *cap = new_cap;
  return true;
}

bool ir_mul_overflows(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return true;
  *out = r;
  return false;
}

bool ir_add_overflows(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return true;
  *out = r;
  return false;
}
