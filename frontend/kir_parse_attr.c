/* kir_parse_attr.c - reading a node's {name=value, ...} attribute block: every ONNX attribute
 * kind, whose spelling alone tells the kind (see frontend/KIR.md). */
#include <string.h>

#include "frontend/kir_internal.h"

static KnStatus parse_value(KirParser *P, KnNode *n, KnAttr *out);

static KnAttrKind kind_from_name(const KirTok *t) {
  for (int k = KN_ATTR_FLOAT; k <= KN_ATTR_TYPES; k++) {
    const char *name = ir_attr_kind_name((KnAttrKind)k);
    if (strlen(name) == t->len && memcmp(name, t->p, t->len) == 0) return (KnAttrKind)k;
  }
  return KN_ATTR_UNDEF;
}

static bool is_list_kind(KnAttrKind k) {
  return k == KN_ATTR_FLOATS || k == KN_ATTR_INTS || k == KN_ATTR_STRINGS || k == KN_ATTR_TENSORS ||
         k == KN_ATTR_GRAPHS || k == KN_ATTR_SPARSE_TENSORS || k == KN_ATTR_TYPES;
}

/* The list kind an element starting at the current token belongs to. */
static KnAttrKind elem_list_kind(const KirParser *P) {
  if (kp_at_float(P)) return KN_ATTR_FLOATS;
  if (P->tok.kind == KT_NUMBER) return KN_ATTR_INTS;
  if (P->tok.kind == KT_STRING) return KN_ATTR_STRINGS;
  if (kp_at(P, "graph")) return KN_ATTR_GRAPHS;
  if (kp_at(P, "sparse")) return KN_ATTR_SPARSE_TENSORS;
  if (kp_at(P, "type")) return KN_ATTR_TYPES;
  if (P->tok.kind == KT_IDENT) return KN_ATTR_TENSORS;
  return KN_ATTR_UNDEF;
}

static size_t elem_size(KnAttrKind k) {
  switch (k) {
  case KN_ATTR_FLOATS: return sizeof(float);
  case KN_ATTR_INTS: return sizeof(int64_t);
  case KN_ATTR_STRINGS: return sizeof(KnBytes);
  default: return sizeof(void *);
  }
}

/* One list element parsed as its scalar attribute, stored into slot. */
static KnStatus parse_elem(KirParser *P, KnNode *n, KnAttrKind list, void *slot) {
  if (list == KN_ATTR_FLOATS) return kp_float(P, KN_F32, slot);
  KnAttr one = {0};
  KnStatus st = parse_value(P, n, &one);
  if (st) return st;
  switch (list) {
  case KN_ATTR_INTS: memcpy(slot, &one.i, sizeof one.i); break;
  case KN_ATTR_STRINGS: memcpy(slot, &one.s, sizeof one.s); break;
  case KN_ATTR_TENSORS: memcpy(slot, &one.t, sizeof one.t); break;
  case KN_ATTR_GRAPHS: memcpy(slot, &one.g, sizeof one.g); break;
  case KN_ATTR_SPARSE_TENSORS: memcpy(slot, &one.sp, sizeof one.sp); break;
  default: memcpy(slot, &one.tp, sizeof one.tp); break;
  }
  return KN_OK;
}

/* Ints read so far become floats once a float shows up ([1, 2.5]); done in place, front to
 * back, since a float slot never reaches past the int it replaces. */
static void ints_to_floats(void *items, int count) {
  for (int i = 0; i < count; i++) {
    int64_t v;
    memcpy(&v, (char *)items + (size_t)i * sizeof v, sizeof v);
    float f = (float)v;
    memcpy((char *)items + (size_t)i * sizeof f, &f, sizeof f);
  }
}

static KnStatus parse_list(KirParser *P, KnNode *n, KnAttrKind hint, KnAttr *out) {
  KirTok open = P->tok;
  KnStatus st = kp_expect(P, '[', "to open the list");
  KnAttrKind kind = hint;
  void *items = NULL;
  int count = 0, cap = 0;
  if (!st && !kir_tok_punct(&P->tok, ']')) {
    do {
      KirTok at = P->tok;
      KnAttrKind k = elem_list_kind(P);
      if (kind == KN_ATTR_INTS && k == KN_ATTR_FLOATS) ints_to_floats(items, count), kind = k;
      if (kind == KN_ATTR_FLOATS && k == KN_ATTR_INTS) k = kind;
      if (!kind) kind = k;
      if (k == KN_ATTR_UNDEF || k != kind)
        return kp_fail(P, &at, KN_ERR_FORMAT, "list element does not fit a %s list", ir_attr_kind_name(kind));
      if (!ir_grow(P->a, &items, &cap, count + 1, elem_size(kind))) return kp_nomem(P);
      st = parse_elem(P, n, kind, (char *)items + (size_t)count * elem_size(kind));
      count++;
    } while (!st && kp_accept(P, ','));
  }
  if (!st) st = kp_expect(P, ']', "to close the list");
  if (st) return st;
  if (!kind) return kp_fail(P, &open, KN_ERR_FORMAT, "an empty list needs its kind, e.g. ints[]");
  if (hint && kind != hint)
    return kp_fail(P, &open, KN_ERR_FORMAT, "a %s list holds %s", ir_attr_kind_name(hint), ir_attr_kind_name(kind));
  out->kind = kind;
  out->n = count;
  out->ints = items; /* every list member of the union is a pointer at the same place */
  return KN_OK;
}

static KnStatus parse_sparse(KirParser *P, KnAttr *out) {
  kp_next(P);
  KnSparseTensor *sp = ir_arena_alloc(P->a, sizeof *sp);
  if (!sp) return kp_nomem(P);
  KnStatus st = kp_dims(P, &sp->rank, &sp->dims);
  if (!st) st = kp_expect(P, '(', "before the sparse values");
  if (!st) st = kp_tensor(P, &sp->values);
  if (!st) st = kp_expect(P, ',', "between sparse values and indices");
  if (!st) st = kp_tensor(P, &sp->indices);
  if (!st) st = kp_expect(P, ')', "after the sparse indices");
  out->kind = KN_ATTR_SPARSE_TENSOR;
  out->sp = sp;
  return st;
}

static KnStatus parse_ref(KirParser *P, KnAttr *out) {
  kp_next(P);
  KirTok at = P->tok;
  out->kind = at.kind == KT_IDENT ? kind_from_name(&at) : KN_ATTR_UNDEF;
  if (!out->kind) return kp_fail(P, &at, KN_ERR_FORMAT, "expected an attribute kind after 'ref'");
  kp_next(P);
  return kp_cstring(P, "the referenced attribute's name", &out->ref_attr_name);
}

/* Values that start with an identifier: keywords, kind-prefixed lists, tensors. */
static KnStatus parse_word(KirParser *P, KnNode *n, KnAttr *out) {
  if (kp_at(P, "ref")) return parse_ref(P, out);
  if (kp_at(P, "sparse")) return parse_sparse(P, out);
  if (kp_at(P, "graph")) {
    out->kind = KN_ATTR_GRAPH;
    return kp_subgraph(P, n, &out->g);
  }
  if (kp_at(P, "type")) {
    kp_next(P);
    out->kind = KN_ATTR_TYPE;
    out->tp = ir_arena_alloc(P->a, sizeof *out->tp);
    return out->tp ? kp_type(P, out->tp, 0) : kp_nomem(P);
  }
  KnAttrKind k = kind_from_name(&P->tok);
  if (is_list_kind(k)) {
    kp_next(P);
    return parse_list(P, n, k, out);
  }
  out->kind = KN_ATTR_TENSOR;
  return kp_tensor(P, &out->t);
}

static KnStatus parse_value(KirParser *P, KnNode *n, KnAttr *out) {
  if (kp_at_float(P)) {
    out->kind = KN_ATTR_FLOAT;
    return kp_float(P, KN_F32, &out->f);
  }
  if (P->tok.kind == KT_NUMBER) {
    out->kind = KN_ATTR_INT;
    return kp_int(P, "an integer", &out->i);
  }
  if (P->tok.kind == KT_STRING) {
    out->kind = KN_ATTR_STRING;
    return kp_string(P, "a string", &out->s);
  }
  if (kir_tok_punct(&P->tok, '[')) return parse_list(P, n, KN_ATTR_UNDEF, out);
  if (P->tok.kind == KT_IDENT) return parse_word(P, n, out);
  return kp_fail(P, &P->tok, KN_ERR_FORMAT, "expected an attribute value");
}

static KnStatus parse_attr(KirParser *P, KnNode *n) {
  KirTok at = P->tok;
  const char *name;
  KnStatus st;
  if (at.kind == KT_IDENT) {
    name = ir_arena_strndup(P->a, at.p, at.len);
    kp_next(P);
    st = name ? KN_OK : kp_nomem(P);
  } else {
    st = kp_cstring(P, "an attribute name", &name);
  }
  if (st) return st;
  if (ir_attr(n, name)) return kp_fail(P, &at, KN_ERR_INVALID, "attribute '%s' is given twice", name);
  KnAttr v = {0};
  if ((st = kp_expect(P, '=', "after the attribute name"))) return st;
  if ((st = parse_value(P, n, &v))) return st;
  if ((st = kp_clause(P, "attr_doc", &v.doc))) return st;
  KnAttr *a = ir_set_attr(n, name, v.kind);
  if (!a) return kp_nomem(P);
  v.name = a->name;
  *a = v;
  return KN_OK;
}

KnStatus kp_attrs(KirParser *P, KnNode *n) {
  KnStatus st = kp_expect(P, '{', "to open the attributes");
  if (st) return st;
  do st = parse_attr(P, n);
  while (!st && kp_accept(P, ','));
  return st ? st : kp_expect(P, '}', "after the attributes");
}
