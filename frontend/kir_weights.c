/* kir_weights.c - decides, before printing, which tensors print inline, which keep their
 * safetensors reference, and which are written to the output weights file under which key. */
#include <stdlib.h>
#include <string.h>

#include "frontend/kir_internal.h"

typedef struct Entry {
  const KnTensor *t;
  const char *file; /* reference file printed */
  char *key;        /* malloc'ed */
  bool write;       /* goes into the output weights file */
} Entry;

struct KirWeights {
  KirWeightsOpts o;
  Entry *e;
  int n, cap;
  int *by_ptr; /* open-addressed: entry index + 1, 0 = empty */
  uint32_t ptr_cap;
  char **keys; /* open-addressed set of keys written to o.file (borrowed from entries) */
  uint32_t key_cap, n_keys;
  KnTensor **wt;
  const char **wk;
  int n_write;
};

bool kir_is_st_ref(const KnTensor *t) {
  static const char ext[] = ".safetensors";
  size_t n = t->location ? strlen(t->location) : 0, e = sizeof ext - 1;
  return t->name && n > e && strcmp(t->location + n - e, ext) == 0;
}

static uint32_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  return (uint32_t)(x ^ (x >> 29));
}

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

static int find_ptr(const KirWeights *w, const KnTensor *t) {
  if (!w->ptr_cap) return -1;
  for (uint32_t i = hash_ptr(t) & (w->ptr_cap - 1); w->by_ptr[i]; i = (i + 1) & (w->ptr_cap - 1))
    if (w->e[w->by_ptr[i] - 1].t == t) return w->by_ptr[i] - 1;
  return -1;
}

static void insert_ptr(KirWeights *w, int k) {
  uint32_t i = hash_ptr(w->e[k].t) & (w->ptr_cap - 1);
  while (w->by_ptr[i]) i = (i + 1) & (w->ptr_cap - 1);
  w->by_ptr[i] = k + 1;
}

static bool rehash_ptrs(KirWeights *w) {
  uint32_t cap = w->ptr_cap ? w->ptr_cap * 2 : 256;
  int *slots = calloc(cap, sizeof *slots);
  if (!slots) return false;
  free(w->by_ptr);
  w->by_ptr = slots;
  w->ptr_cap = cap;
  for (int k = 0; k < w->n; k++) insert_ptr(w, k);
  return true;
}

static bool add_entry(KirWeights *w, Entry en) {
  if (w->n == w->cap) {
    int cap = w->cap ? w->cap * 2 : 64;
    Entry *e = realloc(w->e, (size_t)cap * sizeof *e);
    if (!e) return false;
    w->e = e;
    w->cap = cap;
  }
  w->e[w->n++] = en;
  if ((uint32_t)w->n * 2 > w->ptr_cap) return rehash_ptrs(w);
  insert_ptr(w, w->n - 1);
  return true;
}

static bool key_taken(const KirWeights *w, const char *key) {
  if (!w->key_cap) return false;
  for (uint32_t i = hash_str(key) & (w->key_cap - 1); w->keys[i]; i = (i + 1) & (w->key_cap - 1))
    if (strcmp(w->keys[i], key) == 0) return true;
  return false;
}

static bool key_add(KirWeights *w, char *key) {
  if ((w->n_keys + 1) * 2 > w->key_cap) {
    uint32_t cap = w->key_cap ? w->key_cap * 2 : 256;
    char **slots = calloc(cap, sizeof *slots);
    if (!slots) return false;
    for (uint32_t k = 0; k < w->key_cap; k++) {
      if (!w->keys[k]) continue;
      uint32_t i = hash_str(w->keys[k]) & (cap - 1);
      while (slots[i]) i = (i + 1) & (cap - 1);
      slots[i] = w->keys[k];
    }
    free(w->keys);
    w->keys = slots;
    w->key_cap = cap;
  }
  uint32_t i = hash_str(key) & (w->key_cap - 1);
  while (w->keys[i]) i = (i + 1) & (w->key_cap - 1);
  w->keys[i] = key;
  w->n_keys++;
  return true;
}

/* Records how t prints. hint names anonymous tensors ("Constant_3.value"). */
static bool plan_tensor(KirWeights *w, const KnTensor *t, const char *hint) {
  if (!t || w->o.inline_max < 0 || find_ptr(w, t) >= 0) return true;
  const KirWeightsOpts *o = &w->o;
  bool in_out_file = kir_is_st_ref(t) && strcmp(t->location, o->file) == 0;
  if (kir_is_st_ref(t) && o->keep_refs && !(o->writing && in_out_file)) {
    char *key = strdup(t->name);
    return key && add_entry(w, (Entry){t, t->location, key, false});
  }
  if (!st_dtype_name(t->dtype) || (int64_t)t->nbytes <= o->inline_max) return true;
  char *key = strdup(t->name ? t->name : hint);
  return key && add_entry(w, (Entry){t, o->file, key, true});
}

static bool plan_graph(KirWeights *w, const KnGraph *g);

static bool plan_attr(KirWeights *w, const KnNode *n, const KnAttr *a) {
  const char *owner = n->name && n->name[0] ? n->name
                      : n->n_outputs && n->outputs[0] ? n->outputs[0]->name : ir_ops[n->op].name;
  char hint[512];
  snprintf(hint, sizeof hint, "%s.%s", owner, a->name);
  if (a->ref_attr_name) return true;
  switch (a->kind) {
  case KN_ATTR_TENSOR: return plan_tensor(w, a->t, hint);
  case KN_ATTR_GRAPH: return plan_graph(w, a->g);
  case KN_ATTR_SPARSE_TENSOR:
    return plan_tensor(w, a->sp->values, hint) && plan_tensor(w, a->sp->indices, hint);
  case KN_ATTR_TENSORS:
    for (int64_t i = 0; i < a->n; i++)
      if (!plan_tensor(w, a->tensors[i], hint)) return false;
    return true;
  case KN_ATTR_GRAPHS:
    for (int64_t i = 0; i < a->n; i++)
      if (!plan_graph(w, a->graphs[i])) return false;
    return true;
  case KN_ATTR_SPARSE_TENSORS:
    for (int64_t i = 0; i < a->n; i++)
      if (!plan_tensor(w, a->sparses[i]->values, hint) || !plan_tensor(w, a->sparses[i]->indices, hint))
        return false;
    return true;
  default: return true;
  }
}

static bool plan_graph(KirWeights *w, const KnGraph *g) {
  if (!g) return true;
  for (int i = 0; i < g->n_inits; i++)
    if (!plan_tensor(w, g->inits[i]->init, g->inits[i]->name)) return false;
  for (int i = 0; i < g->n_nodes; i++)
    for (int a = 0; a < g->nodes[i]->n_attrs; a++)
      if (!plan_attr(w, g->nodes[i], &g->nodes[i]->attrs[a])) return false;
  return true;
}

/* Gives each written tensor a key unique in the output file: its own name when free, else
 * the name with the first free "_N" suffix. */
static bool assign_keys(KirWeights *w) {
  for (int i = 0; i < w->n; i++)
    if (!w->e[i].write && strcmp(w->e[i].file, w->o.file) == 0 && !key_taken(w, w->e[i].key))
      if (!key_add(w, w->e[i].key)) return false;
  w->wt = calloc((size_t)w->n + 1, sizeof *w->wt);
  w->wk = calloc((size_t)w->n + 1, sizeof *w->wk);
  if (!w->wt || !w->wk) return false;
  for (int i = 0; i < w->n; i++) {
    Entry *e = &w->e[i];
    if (!e->write) continue;
    for (long k = 1; key_taken(w, e->key); k++) {
      size_t len = strlen(e->key) + 24;
      char *alt = malloc(len);
      if (!alt) return false;
      snprintf(alt, len, "%s_%ld", w->e[i].key, k);
      if (!key_taken(w, alt)) {
        free(e->key);
        e->key = alt;
        break;
      }
      free(alt);
    }
    if (!key_add(w, e->key)) return false;
    w->wt[w->n_write] = (KnTensor *)e->t;
    w->wk[w->n_write++] = e->key;
  }
  return true;
}

KnStatus kir_weights_plan(const KnGraph *g, const KirWeightsOpts *o, KirWeights **out,
                          KnError *err) {
  KirWeights *w = calloc(1, sizeof *w);
  if (!w) return kn_fail(err, KN_ERR_NOMEM, "out of memory planning .kir weights");
  w->o = *o;
  if (!plan_graph(w, g) || !assign_keys(w)) {
    kir_weights_free(w);
    return kn_fail(err, KN_ERR_NOMEM, "out of memory planning .kir weights");
  }
  *out = w;
  return KN_OK;
}

void kir_weights_free(KirWeights *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) free(w->e[i].key);
  free(w->e);
  free(w->by_ptr);
  free(w->keys);
  free(w->wt);
  free(w->wk);
  free(w);
}

bool kir_weights_ref(const KirWeights *w, const KnTensor *t, const char **file, const char **key) {
  int i = find_ptr(w, t);
  if (i < 0) return false;
  *file = w->e[i].file;
  *key = w->e[i].key;
  return true;
}

int kir_weights_to_write(const KirWeights *w, KnTensor *const **tensors, const char *const **keys) {
  *tensors = w->wt;
  *keys = w->wk;
  return w->n_write;
}
