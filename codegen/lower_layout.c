/* lower_layout.c - lowerings that only rearrange elements (Reshape/Flatten/Squeeze/Unsqueeze/
 * Identity copies, Dropout, Transpose, Concat, Split, Slice, Expand, Tile, Pad, DepthToSpace/
 * SpaceToDepth, ReverseSequence) and the data-movement helpers of lower_data.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_data.h"

/* Below this many bytes (or elements of work) a loop runs inline instead of across threads. */
#define DM_PAR_BYTES 65536
#define DM_PAR_WORK 16384

/* ---- element access ----------------------------------------------------------------------- */
int dm_elem_bytes(KnDtype t) {
  switch (t) {
  case KN_BOOL: case KN_I8: case KN_U8: return 1;
  case KN_I16: case KN_U16: case KN_F16: case KN_BF16: return 2;
  case KN_I32: case KN_U32: case KN_F32: return 4;
  case KN_I64: case KN_U64: case KN_F64: return 8;
  default: return 0;
  }
}

LLVMTypeRef dm_raw_type(CgKernel *k, int esize) {
  switch (esize) {
  case 1: return k->m->t_i8;
  case 2: return k->m->t_i16;
  case 4: return k->m->t_i32;
  default: return k->m->t_i64;
  }
}

KnStatus dm_require_dtype(CgKernel *k, KnDtype t) {
  if (dm_elem_bytes(t) > 0) return KN_OK;
  char msg[80];
  snprintf(msg, sizeof msg, "dtype %s", ir_dtype_name(t));
  return cg_unsupported(k, msg);
}

LLVMValueRef dm_ptr(CgKernel *k, LLVMValueRef base, int esize, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(k->b, dm_raw_type(k, esize), base, &idx, 1, "");
}

void dm_copy_elem(CgKernel *k, LLVMValueRef dst, LLVMValueRef di, LLVMValueRef src, LLVMValueRef si,
                  int esize) {
  LLVMValueRef v = LLVMBuildLoad2(k->b, dm_raw_type(k, esize), dm_ptr(k, src, esize, si), "");
  LLVMBuildStore(k->b, v, dm_ptr(k, dst, esize, di));
}

LLVMValueRef dm_load_i64(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef idx) {
  return cg_convert(k, cg_load(k, base, t, idx), t, KN_I64);
}

LLVMValueRef dm_wrap_index(CgKernel *k, LLVMValueRef idx, LLVMValueRef dim, const char *what) {
  LLVMBuilderRef b = k->b;
  LLVMValueRef neg = LLVMBuildICmp(b, LLVMIntSLT, idx, cg_i64(k, 0), "");
  LLVMValueRef w = LLVMBuildSelect(b, neg, LLVMBuildAdd(b, idx, dim, ""), idx, "");
  /* one unsigned compare catches both a still-negative index and one past the end */
  cg_fail_if(k, LLVMBuildICmp(b, LLVMIntUGE, w, dim, ""), KN_ERR_INVALID, what, idx);
  return w;
}

void dm_strides(const int64_t *dims, int rank, int64_t *out) {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    out[d] = s;
    s *= dims[d];
  }
}

void dm_dims(const KnShape *s, int64_t *out) {
  for (int d = 0; d < s->rank; d++) out[d] = s->dims[d].value;
}

LLVMValueRef dm_offset(CgKernel *k, LLVMValueRef *coords, const int64_t *strides, int rank) {
  LLVMValueRef off = cg_i64(k, 0);
  for (int d = 0; d < rank; d++)
    if (strides[d]) off = LLVMBuildAdd(k->b, off, LLVMBuildMul(k->b, coords[d], cg_i64(k, strides[d]), ""), "");
  return off;
}

void dm_fill(CgKernel *k, LLVMValueRef base, KnDtype t, LLVMValueRef v, int64_t count, bool raw) {
  if (count <= 0) return;
  int es = dm_elem_bytes(t);
  if (raw && LLVMIsAConstantInt(v) && LLVMConstIntGetZExtValue(v) == 0) {
    cg_memset(k, base, 0, cg_i64(k, count * es));
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, count));
  if (raw) LLVMBuildStore(k->b, v, dm_ptr(k, base, es, l.i));
  else cg_store(k, base, t, l.i, v);
  cg_loop_end(k, &l);
}

void dm_loop(CgKernel *k, int64_t n, int64_t work, CgBodyFn body, void *user) {
  if (n <= 0) return;
  if (work < 1) work = 1;
  if (n > 1 && n * work >= DM_PAR_WORK) {
    cg_parallel_for(k, n, (DM_PAR_WORK + work - 1) / work, body, user);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, n));
  body(k, l.i, user);
  cg_loop_end(k, &l);
}

/* ---- loop nests over a shape -------------------------------------------------------------- */
typedef struct ForEach {
  const int64_t *dims;
  int rank;
  DmElemFn fn;
  void *user;
} ForEach;

static void each_dims(CgKernel *k, const ForEach *f, int d, LLVMValueRef *coords) {
  if (d == f->rank) {
    f->fn(k, coords, f->user);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, f->dims[d]));
  coords[d] = l.i;
  each_dims(k, f, d + 1, coords);
  cg_loop_end(k, &l);
}

static void each_outer(CgKernel *k, LLVMValueRef i, void *user) {
  LLVMValueRef coords[DM_MAX_RANK];
  coords[0] = i;
  each_dims(k, user, 1, coords);
}

void dm_for_each(CgKernel *k, const int64_t *dims, int rank, bool parallel, DmElemFn fn, void *user) {
  ForEach f = {dims, rank, fn, user};
  int64_t total = 1;
  for (int d = 0; d < rank; d++) total *= dims[d];
  if (total == 0) return;
  if (rank == 0) {
    fn(k, NULL, user);
    return;
  }
  if (parallel) {
    dm_loop(k, dims[0], total / dims[0], each_outer, &f);
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, dims[0]));
  each_outer(k, l.i, &f);
  cg_loop_end(k, &l);
}

/* ---- the strided copy engine -------------------------------------------------------------- */
/* Drops size-1 dims and merges a dim into the one before it when both sides step through the
 * pair as one run, so most copies become a few long rows. */
static void simplify(DmCopy *c) {
  int r = 0;
  for (int d = 0; d < c->rank; d++) {
    if (c->dims[d] == 1) continue;
    if (r > 0 && c->dst_stride[r - 1] == c->dst_stride[d] * c->dims[d] &&
        c->src_stride[r - 1] == c->src_stride[d] * c->dims[d]) {
      c->dims[r - 1] *= c->dims[d];
      c->dst_stride[r - 1] = c->dst_stride[d];
      c->src_stride[r - 1] = c->src_stride[d];
      continue;
    }
    c->dims[r] = c->dims[d];
    c->dst_stride[r] = c->dst_stride[d];
    c->src_stride[r] = c->src_stride[d];
    r++;
  }
  c->rank = r;
}

static LLVMValueRef step_off(CgKernel *k, LLVMValueRef off, LLVMValueRef i, int64_t stride) {
  return LLVMBuildAdd(k->b, off, LLVMBuildMul(k->b, i, cg_i64(k, stride), ""), "");
}

/* Loops over dims [d, rank) from element offsets so/dof; a contiguous last row is one memcpy. */
#define DM_BLOCK 8

/* Transposes the 8x8 block whose source rows (contiguous along dim j) start at so + r*blk_sl
 * into destination rows (contiguous along the last dim) at dof + r*blk_dj, in registers: each
 * shuffle stage swaps one bit between row and column index. */
static void transpose_block(CgKernel *k, const DmCopy *c, LLVMValueRef so, LLVMValueRef dof) {
  LLVMBuilderRef b = k->b;
  LLVMTypeRef vt = LLVMVectorType(dm_raw_type(k, c->esize), DM_BLOCK);
  LLVMValueRef rows[DM_BLOCK], ma[DM_BLOCK], mb[DM_BLOCK];
  for (int r = 0; r < DM_BLOCK; r++) {
    LLVMValueRef at = LLVMBuildAdd(b, so, cg_i64(k, r * c->blk_sl), "");
    rows[r] = LLVMBuildLoad2(b, vt, dm_ptr(k, k->in[c->src_in], c->esize, at), "");
    LLVMSetAlignment(rows[r], (unsigned)c->esize);
  }
  for (int bit = DM_BLOCK / 2; bit >= 1; bit /= 2) {
    for (int j = 0; j < DM_BLOCK; j++) {
      ma[j] = LLVMConstInt(k->m->t_i32, (unsigned)((j & bit) ? DM_BLOCK + (j ^ bit) : j), 0);
      mb[j] = LLVMConstInt(k->m->t_i32, (unsigned)((j & bit) ? DM_BLOCK + j : (j ^ bit)), 0);
    }
    LLVMValueRef mask_a = LLVMConstVector(ma, DM_BLOCK), mask_b = LLVMConstVector(mb, DM_BLOCK);
    for (int i = 0; i < DM_BLOCK; i++) {
      if (i & bit) continue;
      LLVMValueRef x = rows[i], y = rows[i | bit];
      rows[i] = LLVMBuildShuffleVector(b, x, y, mask_a, "");
      rows[i | bit] = LLVMBuildShuffleVector(b, x, y, mask_b, "");
    }
  }
  for (int r = 0; r < DM_BLOCK; r++) {
    LLVMValueRef at = LLVMBuildAdd(b, dof, cg_i64(k, r * c->blk_dj), "");
    LLVMValueRef st = LLVMBuildStore(b, rows[r], dm_ptr(k, k->out[c->dst_out], c->esize, at));
    LLVMSetAlignment(st, (unsigned)c->esize);
  }
}

static void copy_dims(CgKernel *k, const DmCopy *c, int d, LLVMValueRef so, LLVMValueRef dof) {
  LLVMValueRef src = k->in[c->src_in], dst = k->out[c->dst_out];
  if (d == c->rank) {
    if (c->blk_sl) transpose_block(k, c, so, dof);
    else dm_copy_elem(k, dst, dof, src, so, c->esize);
    return;
  }
  if (d == c->rank - 1 && c->src_stride[d] == 1 && c->dst_stride[d] == 1 && !c->blk_sl) {
    cg_memcpy(k, dm_ptr(k, dst, c->esize, dof), dm_ptr(k, src, c->esize, so), cg_i64(k, c->dims[d] * c->esize));
    return;
  }
  CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, c->dims[d]));
  copy_dims(k, c, d + 1, step_off(k, so, l.i, c->src_stride[d]), step_off(k, dof, l.i, c->dst_stride[d]));
  cg_loop_end(k, &l);
}

static void copy_outer(CgKernel *k, LLVMValueRef i, void *user) {
  const DmCopy *c = user;
  copy_dims(k, c, 1, step_off(k, cg_i64(k, c->src_off), i, c->src_stride[0]),
            step_off(k, cg_i64(k, c->dst_off), i, c->dst_stride[0]));
}

/* One contiguous run of n elements: chunks of it across threads when it is long. */
typedef struct FlatCopy {
  const DmCopy *c;
  int64_t n, chunk;
} FlatCopy;

static void flat_chunk(CgKernel *k, LLVMValueRef i, void *user) {
  const FlatCopy *f = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef first = LLVMBuildMul(b, i, cg_i64(k, f->chunk), "");
  LLVMValueRef left = LLVMBuildSub(b, cg_i64(k, f->n), first, "");
  LLVMValueRef len = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, cg_i64(k, f->chunk), ""), left,
                                     cg_i64(k, f->chunk), "");
  int es = f->c->esize;
  LLVMValueRef dst = dm_ptr(k, k->out[f->c->dst_out], es, LLVMBuildAdd(b, first, cg_i64(k, f->c->dst_off), ""));
  LLVMValueRef src = dm_ptr(k, k->in[f->c->src_in], es, LLVMBuildAdd(b, first, cg_i64(k, f->c->src_off), ""));
  cg_memcpy(k, dst, src, LLVMBuildMul(b, len, cg_i64(k, es), ""));
}

/* Emits a copy that needs no tiling: rows memcpy'd, outer dim across threads when large. */
static void emit_rows(CgKernel *k, const DmCopy *c0) {
  DmCopy c = *c0;
  int64_t total = 1;
  for (int d = 0; d < c.rank; d++) total *= c.dims[d];
  if (total == 0) return;
  simplify(&c);
  if (c.rank == 0) {
    copy_dims(k, &c, 0, cg_i64(k, c.src_off), cg_i64(k, c.dst_off));
    return;
  }
  int64_t bytes = total * c.esize * (c.blk_sl ? DM_BLOCK * DM_BLOCK : 1);
  if (c.rank == 1 && c.src_stride[0] == 1 && c.dst_stride[0] == 1 && !c.blk_sl) {
    FlatCopy f = {&c, total, (DM_PAR_BYTES * 4 + c.esize - 1) / c.esize};
    if (bytes <= DM_PAR_BYTES * 4) f.chunk = total;
    int64_t chunks = (total + f.chunk - 1) / f.chunk;
    if (chunks == 1) flat_chunk(k, cg_i64(k, 0), &f);
    else cg_parallel_for(k, chunks, 1, flat_chunk, &f);
    return;
  }
  if (bytes < DM_PAR_BYTES) {
    CgLoop l = cg_loop_begin(k, cg_i64(k, 0), cg_i64(k, c.dims[0]));
    copy_outer(k, l.i, &c);
    cg_loop_end(k, &l);
    return;
  }
  int64_t per_outer = bytes / c.dims[0];
  cg_parallel_for(k, c.dims[0], per_outer >= DM_PAR_BYTES ? 1 : DM_PAR_BYTES / per_outer, copy_outer, &c);
}

static void push_dim(DmCopy *c, int64_t n, int64_t src_stride, int64_t dst_stride) {
  c->dims[c->rank] = n, c->src_stride[c->rank] = src_stride, c->dst_stride[c->rank] = dst_stride;
  c->rank++;
}

/* A transpose-like copy (the output's contiguous dim strided in the source, the source's
 * contiguous dim j strided in the output) goes 8x8 block by block, each block transposed in
 * registers, so reads and writes both move whole vectors. Blocks are visited in 64x64 tiles so
 * the lines and pages a tile touches stay cached; strips left over recurse or copy plainly. */
static bool emit_tiled(CgKernel *k, const DmCopy *c) {
  int last = c->rank - 1, j = -1;
  if (c->rank < 2 || c->dst_stride[last] != 1 || c->src_stride[last] == 1 || c->src_stride[last] == 0)
    return false;
  for (int d = 0; d < last; d++)
    if (c->src_stride[d] == 1) j = d;
  if (j < 0 || c->dims[j] < DM_BLOCK || c->dims[last] < DM_BLOCK) return false;
  const int64_t T = DM_BLOCK * DM_BLOCK;
  int64_t B = c->dims[j] >= T && c->dims[last] >= T ? T : DM_BLOCK;
  int64_t qj = c->dims[j] / B, ql = c->dims[last] / B, sj = c->src_stride[j], dj = c->dst_stride[j];
  int64_t sl = c->src_stride[last];
  DmCopy t = *c;
  t.rank = 0;
  t.blk_sl = sl, t.blk_dj = dj;
  for (int d = 0; d < last; d++)
    if (d != j) push_dim(&t, c->dims[d], c->src_stride[d], c->dst_stride[d]);
  push_dim(&t, qj, B * sj, B * dj);
  push_dim(&t, ql, B * sl, B);
  if (B == T) {
    push_dim(&t, DM_BLOCK, DM_BLOCK * sj, DM_BLOCK * dj);
    push_dim(&t, DM_BLOCK, DM_BLOCK * sl, DM_BLOCK);
  }
  emit_rows(k, &t);
  if (c->dims[j] % B) { /* the rows past the last whole tile, all columns */
    DmCopy r = *c;
    r.dims[j] -= qj * B;
    r.src_off += qj * B * sj, r.dst_off += qj * B * dj;
    if (!emit_tiled(k, &r)) emit_rows(k, &r);
  }
  if (c->dims[last] % B) { /* the columns past the last whole tile, tiled rows */
    DmCopy r = *c;
    r.dims[j] = qj * B, r.dims[last] -= ql * B;
    r.src_off += ql * B * sl, r.dst_off += ql * B;
    if (!emit_tiled(k, &r)) emit_rows(k, &r);
  }
  return true;
}

void dm_emit_copy(CgKernel *k, const DmCopy *c0) {
  DmCopy c = *c0;
  int64_t total = 1;
  for (int d = 0; d < c.rank; d++) total *= c.dims[d];
  if (total == 0) return;
  simplify(&c);
  if (total * c.esize >= DM_PAR_BYTES && emit_tiled(k, &c)) return;
  emit_rows(k, &c);
}

void dm_copy_all(CgKernel *k, int src_in, int dst_out, int64_t nbytes) {
  DmCopy c = {.rank = 1, .dims = {nbytes}, .dst_stride = {1}, .src_stride = {1}, .src_in = src_in,
              .dst_out = dst_out, .esize = 1};
  dm_emit_copy(k, &c);
}

/* Copies input 0 (row-major dims src_dims) permuted: output dim d is source dim perm[d]. */
static void emit_permute(CgKernel *k, const int64_t *src_dims, const int *perm, int rank, int esize) {
  DmCopy c = {.rank = rank, .esize = esize};
  int64_t src_str[DM_MAX_RANK];
  dm_strides(src_dims, rank, src_str);
  for (int d = 0; d < rank; d++) {
    c.dims[d] = src_dims[perm[d]];
    c.src_stride[d] = src_str[perm[d]];
  }
  dm_strides(c.dims, rank, c.dst_stride);
  dm_emit_copy(k, &c);
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity --------------------------------------- */
KnStatus cg_lower_copy(CgKernel *k) {
  const KnValue *in = k->node->inputs[0], *out = k->node->outputs[0];
  if (in->type.kind != KN_TYPE_TENSOR || out->type.kind != KN_TYPE_TENSOR)
    return cg_unsupported(k, "only tensors can be copied");
  KnDtype t = in->type.dtype;
  int64_t n = cg_numel(&in->type.shape);
  size_t nbytes;
  if (t == KN_STRING || !ir_dtype_nbytes(t, n, &nbytes)) return cg_unsupported(k, "string tensors");
  if (n != cg_numel(&out->type.shape)) return cg_unsupported(k, "input and output sizes differ");
  dm_copy_all(k, 0, 0, (int64_t)nbytes);
  return KN_OK;
}

/* ---- Dropout ------------------------------------------------------------------------------ */
/* Whether training mode is on, as far as compile time knows: 0 no, 1 yes, -1 only at run time. */
static int dropout_training(const KnNode *n) {
  if (n->opset < 12 || n->n_inputs < 3 || !n->inputs[2]) return 0;
  const KnTensor *t = n->inputs[2]->init;
  return t && t->numel == 1 ? ir_tensor_get_int(t, 0) != 0 : -1;
}

/* The drop ratio, when compile time knows it; -1 when only the run does. */
static double dropout_ratio(const KnNode *n) {
  if (n->opset < 12) return ir_attr_float(n, "ratio", 0.5f);
  if (n->n_inputs < 2 || !n->inputs[1]) return 0.5;
  const KnTensor *t = n->inputs[1]->init;
  return t && t->numel == 1 ? ir_tensor_get_double(t, 0) : -1;
}

LLVMValueRef dm_const_global(CgKernel *k, const void *data, size_t nbytes) {
  LLVMValueRef init = LLVMConstStringInContext2(k->m->ctx, data, nbytes, 1);
  LLVMValueRef g = LLVMAddGlobal(k->m->mod, LLVMTypeOf(init), "kn_const");
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(g, 16);
  return g;
}

typedef struct DropArgs {
  int training;     /* 1 on, -1 read input 2 at run time */
  double ratio;     /* -1: read input 1 at run time */
  KnDtype t;
} DropArgs;

static LLVMValueRef dropout_ratio_value(CgKernel *k, const DropArgs *a) {
  if (a->ratio >= 0) return cg_const(k, KN_F64, a->ratio);
  KnDtype rt = cg_in_dtype(k, 1);
  return cg_convert(k, cg_load(k, k->in[1], rt, cg_i64(k, 0)), rt, KN_F64);
}

/* y = x * keep / (1 - ratio) when training is on and ratio != 0, else y = x; keep is the mask
 * the runtime drew into extra[0] (one byte per element). */
static void dropout_elem(CgKernel *k, LLVMValueRef i, void *user) {
  const DropArgs *a = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef r = dropout_ratio_value(k, a);
  LLVMValueRef on = LLVMConstInt(k->m->t_i1, 1, 0);
  if (a->training < 0)
    on = LLVMBuildICmp(b, LLVMIntNE, dm_load_i64(k, k->in[2], cg_in_dtype(k, 2), cg_i64(k, 0)), cg_i64(k, 0), "");
  on = LLVMBuildAnd(b, on, cg_cmp(k, KN_F64, "ne", r, cg_const(k, KN_F64, 0)), "");
  LLVMValueRef drawn = cg_load(k, k->extra[0], KN_BOOL, i);
  LLVMValueRef keep = LLVMBuildOr(b, LLVMBuildNot(b, on, ""), drawn, "");
  LLVMValueRef rc = cg_convert(k, r, KN_F64, a->t), one = cg_const(k, a->t, 1);
  LLVMValueRef scale = cg_select(k, on, cg_div(k, a->t, one, cg_sub(k, a->t, one, rc)), one);
  LLVMValueRef y = cg_mul(k, a->t, cg_load(k, k->in[0], a->t, i), scale);
  cg_store(k, k->out[0], a->t, i, cg_select(k, keep, y, cg_const(k, a->t, 0)));
  if (k->node->n_outputs > 1 && k->node->outputs[1])
    cg_store(k, k->out[1], cg_out_dtype(k, 1), i, cg_convert(k, keep, KN_BOOL, cg_out_dtype(k, 1)));
}

/* The mask is drawn at run time into a scratch buffer (kn_rt_dropout_keep), then applied. */
static KnStatus dropout_training_mode(CgKernel *k, DropArgs *a, int64_t numel) {
  if (!ir_dtype_is_float(a->t)) return cg_unsupported(k, "training mode on a non-float input");
  CgModule *m = k->m;
  LLVMTypeRef malloc_ty = LLVMFunctionType(m->t_ptr, &m->t_i64, 1, 0);
  LLVMTypeRef free_ty = LLVMFunctionType(m->t_void, &m->t_ptr, 1, 0);
  LLVMValueRef n = cg_i64(k, numel > 0 ? numel : 1);
  LLVMValueRef keep = LLVMBuildCall2(k->b, malloc_ty, cg_extern_fn(m, "malloc", malloc_ty), &n, 1, "");
  cg_fail_if(k, LLVMBuildIsNull(k->b, keep, ""), KN_ERR_NOMEM, "out of memory for a dropout mask of", n);
  const KnAttr *seed = ir_attr(k->node, "seed");
  LLVMTypeRef args[5] = {m->t_ptr, m->t_i64, m->t_f64, m->t_i64, m->t_i32};
  LLVMTypeRef fty = LLVMFunctionType(m->t_void, args, 5, 0);
  LLVMValueRef vals[5] = {keep, cg_i64(k, numel), dropout_ratio_value(k, a), cg_i64(k, seed ? seed->i : 0),
                          cg_i32(k, seed != NULL)};
  LLVMBuildCall2(k->b, fty, cg_extern_fn(m, "kn_rt_dropout_keep", fty), vals, 5, "");
  cg_parallel_for_extra(k, numel, 16384, dropout_elem, a, &keep, 1);
  LLVMBuildCall2(k->b, free_ty, cg_extern_fn(m, "free", free_ty), &keep, 1, "");
  return KN_OK;
}

/* Opsets below 12 have no training input; like every runtime, kiln runs them as inference (old
 * models carry is_test=0 by default yet mean inference). In training mode the mask is drawn at
 * run time (runtime/rt_random.c): with a seed attribute numpy's stream for it, as ONNX's
 * reference, the same on every run; without one a fresh mask per run. */
KnStatus cg_lower_dropout(CgKernel *k) {
  const KnNode *n = k->node;
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int64_t numel = cg_numel(cg_in_shape(k, 0));
  DropArgs a = {dropout_training(n), dropout_ratio(n), t};
  if (n->n_outputs > 1 && n->outputs[1] && (st = dm_require_dtype(k, cg_out_dtype(k, 1))) != KN_OK) return st;
  if (a.training != 0 && a.ratio != 0) return dropout_training_mode(k, &a, numel);
  dm_copy_all(k, 0, 0, numel * dm_elem_bytes(t));
  if (n->n_outputs > 1 && n->outputs[1]) { /* the mask keeps everything */
    KnDtype mt = cg_out_dtype(k, 1);
    dm_fill(k, k->out[1], mt, cg_const(k, mt, 1), numel, false);
  }
  return KN_OK;
}

/* ---- Transpose, DepthToSpace, SpaceToDepth ------------------------------------------------ */
KnStatus cg_lower_transpose(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int r = s->rank, perm[DM_MAX_RANK];
  if (r > DM_MAX_RANK) return cg_unsupported(k, "rank above 32");
  int64_t cnt;
  const int64_t *p = ir_attr_ints(k->node, "perm", &cnt);
  bool seen[DM_MAX_RANK] = {0};
  if (p && cnt != r) return cg_unsupported(k, "perm length differs from the rank");
  for (int d = 0; d < r; d++) {
    perm[d] = p ? (int)p[d] : r - 1 - d;
    if (perm[d] < 0 || perm[d] >= r || seen[perm[d]]) return cg_unsupported(k, "perm is not a permutation");
    seen[perm[d]] = true;
  }
  int64_t dims[DM_MAX_RANK];
  dm_dims(s, dims);
  emit_permute(k, dims, perm, r, dm_elem_bytes(t));
  return KN_OK;
}

/* Both are a reshape to 6-D, a transpose and a reshape back (the ONNX definitions). */
KnStatus cg_lower_depth_space(CgKernel *k) {
  const KnNode *n = k->node;
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int64_t b = ir_attr_int(n, "blocksize", 0);
  if (s->rank != 4 || b <= 0) return cg_unsupported(k, "input must be 4-D with a positive blocksize");
  int64_t N = s->dims[0].value, C = s->dims[1].value, H = s->dims[2].value, W = s->dims[3].value;
  int64_t src[6];
  int perm[6];
  if (n->op == KN_OP_DepthToSpace) {
    if (C % (b * b)) return cg_unsupported(k, "channels not divisible by blocksize^2");
    const char *mode = ir_attr_string(n, "mode", "DCR");
    bool crd = strcmp(mode, "CRD") == 0;
    if (!crd && strcmp(mode, "DCR") != 0) return cg_unsupported(k, "mode");
    int64_t dcr[6] = {N, b, b, C / (b * b), H, W}, crd_dims[6] = {N, C / (b * b), b, b, H, W};
    int p_dcr[6] = {0, 3, 4, 1, 5, 2}, p_crd[6] = {0, 1, 4, 2, 5, 3};
    memcpy(src, crd ? crd_dims : dcr, sizeof src);
    memcpy(perm, crd ? p_crd : p_dcr, sizeof perm);
  } else {
    if (H % b || W % b) return cg_unsupported(k, "height or width not divisible by blocksize");
    int64_t dims[6] = {N, C, H / b, b, W / b, b};
    int p[6] = {0, 3, 5, 1, 2, 4};
    memcpy(src, dims, sizeof src);
    memcpy(perm, p, sizeof perm);
  }
  emit_permute(k, src, perm, 6, dm_elem_bytes(t));
  return KN_OK;
}

/* ---- Concat, Split ------------------------------------------------------------------------ */
KnStatus cg_lower_concat(CgKernel *k) {
  const KnNode *n = k->node;
  const KnShape *os = cg_out_shape(k, 0);
  KnDtype t = cg_out_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int r = os->rank;
  if (r > DM_MAX_RANK || r == 0) return cg_unsupported(k, "rank 0 or above 32");
  int64_t axis = ir_attr_int(n, "axis", n->opset < 4 ? 1 : 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return cg_unsupported(k, "axis out of range");
  int64_t out_dims[DM_MAX_RANK], out_str[DM_MAX_RANK], off = 0;
  dm_dims(os, out_dims);
  dm_strides(out_dims, r, out_str);
  for (int i = 0; i < n->n_inputs; i++) {
    const KnShape *s = cg_in_shape(k, i);
    if (!s) continue;
    if (s->rank != r) return cg_unsupported(k, "inputs differ in rank");
    DmCopy c = {.rank = r, .src_in = i, .esize = dm_elem_bytes(t), .dst_off = off * out_str[axis]};
    dm_dims(s, c.dims);
    dm_strides(c.dims, r, c.src_stride);
    memcpy(c.dst_stride, out_str, sizeof out_str);
    dm_emit_copy(k, &c);
    off += c.dims[axis];
  }
  if (off != out_dims[axis]) return cg_unsupported(k, "input sizes along the axis do not add up to the output's");
  return KN_OK;
}

KnStatus cg_lower_split(CgKernel *k) {
  const KnNode *n = k->node;
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int r = s->rank;
  if (r > DM_MAX_RANK || r == 0) return cg_unsupported(k, "rank 0 or above 32");
  int64_t axis = ir_attr_int(n, "axis", 0);
  if (axis < 0) axis += r;
  if (axis < 0 || axis >= r) return cg_unsupported(k, "axis out of range");
  int64_t in_dims[DM_MAX_RANK], in_str[DM_MAX_RANK], off = 0;
  dm_dims(s, in_dims);
  dm_strides(in_dims, r, in_str);
  for (int o = 0; o < n->n_outputs; o++) {
    if (!n->outputs[o]) return cg_unsupported(k, "an omitted output");
    DmCopy c = {.rank = r, .dst_out = o, .esize = dm_elem_bytes(t), .src_off = off * in_str[axis]};
    dm_dims(cg_out_shape(k, o), c.dims);
    dm_strides(c.dims, r, c.dst_stride);
    memcpy(c.src_stride, in_str, sizeof in_str);
    off += c.dims[axis];
    if (off > in_dims[axis]) return cg_unsupported(k, "output sizes exceed the input along the axis");
    dm_emit_copy(k, &c);
  }
  if (off != in_dims[axis]) return cg_unsupported(k, "output sizes along the axis do not add up to the input's");
  return KN_OK;
}

/* ---- Slice -------------------------------------------------------------------------------- */
#define SLICE_MAX 64

typedef struct SliceLists {
  int n;
  int64_t starts[SLICE_MAX], ends[SLICE_MAX], axes[SLICE_MAX], steps[SLICE_MAX];
} SliceLists;

/* Reads starts/ends/axes/steps (attributes before opset 10, inputs 1..4 after); false when some
 * list is only known at run time. */
static bool slice_lists(const KnNode *n, int rank, SliceLists *l) {
  int ns, ne, na = -2, nst = -2;
  if (n->opset < 10) {
    int64_t c1, c2, c3 = 0;
    const int64_t *s = ir_attr_ints(n, "starts", &c1), *e = ir_attr_ints(n, "ends", &c2);
    const int64_t *a = ir_attr_ints(n, "axes", &c3);
    if (!s || !e || c1 > SLICE_MAX || c2 > SLICE_MAX || c3 > SLICE_MAX) return false;
    memcpy(l->starts, s, (size_t)c1 * sizeof *s);
    memcpy(l->ends, e, (size_t)c2 * sizeof *e);
    if (a) memcpy(l->axes, a, (size_t)c3 * sizeof *a), na = (int)c3;
    ns = (int)c1, ne = (int)c2;
  } else {
    ns = ir_input_ints(n, 1, l->starts, SLICE_MAX);
    ne = ir_input_ints(n, 2, l->ends, SLICE_MAX);
    if (n->n_inputs > 3 && n->inputs[3]) na = ir_input_ints(n, 3, l->axes, SLICE_MAX);
    if (n->n_inputs > 4 && n->inputs[4]) nst = ir_input_ints(n, 4, l->steps, SLICE_MAX);
  }
  if (ns < 0 || ne != ns || na == -1 || nst == -1 || ns > rank) return false;
  if ((na >= 0 && na != ns) || (nst >= 0 && nst != ns)) return false;
  l->n = ns;
  for (int j = 0; j < ns; j++) {
    if (na < 0) l->axes[j] = j;
    if (nst < 0) l->steps[j] = 1;
  }
  return true;
}

/* Clamps start/end into a dim of size d for the step's direction (as ONNX) and counts the
 * elements taken. */
static int64_t slice_clamp(int64_t d, int64_t step, int64_t *start, int64_t *end) {
  int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? d : d - 1;
  if (*start < 0) *start += d;
  if (*end < 0) *end += d;
  *start = *start < 0 ? 0 : *start > hi ? hi : *start;
  *end = *end < lo ? lo : *end > hi ? hi : *end;
  int64_t span = step > 0 ? *end - *start : *start - *end;
  uint64_t mag = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;
  return d == 0 || span <= 0 ? 0 : (int64_t)((uint64_t)(span - 1) / mag + 1);
}

/* Slice with every list known: one strided copy. */
static KnStatus slice_static(CgKernel *k, const SliceLists *l, int r, int esize) {
  int64_t in_dims[DM_MAX_RANK], in_str[DM_MAX_RANK], start[DM_MAX_RANK] = {0}, step[DM_MAX_RANK];
  DmCopy c = {.rank = r, .esize = esize};
  dm_dims(cg_in_shape(k, 0), in_dims);
  dm_strides(in_dims, r, in_str);
  dm_dims(cg_out_shape(k, 0), c.dims);
  dm_strides(c.dims, r, c.dst_stride);
  for (int d = 0; d < r; d++) step[d] = 1;
  for (int j = 0; j < l->n; j++) {
    int64_t ax = l->axes[j] < 0 ? l->axes[j] + r : l->axes[j];
    if (ax < 0 || ax >= r || l->steps[j] == 0) return cg_unsupported(k, "axis out of range or step 0");
    int64_t s = l->starts[j], e = l->ends[j];
    if (slice_clamp(in_dims[ax], l->steps[j], &s, &e) != c.dims[ax])
      return cg_unsupported(k, "slice parameters do not give the output's shape");
    start[ax] = s, step[ax] = c.dims[ax] > 1 ? l->steps[j] : 1; /* a huge step taking one element */
  }
  for (int d = 0; d < r; d++) {
    c.src_stride[d] = in_str[d] * step[d];
    c.src_off += start[d] * in_str[d];
  }
  dm_emit_copy(k, &c);
  return KN_OK;
}

/* The run-time parameters of one axis: clamped start and step stored at slot ax of the arrays. */
typedef struct SliceRt {
  int rank, esize;
  int64_t in_str[DM_MAX_RANK], out_str[DM_MAX_RANK];
  LLVMTypeRef arr;
  LLVMValueRef start, step; /* allocas [rank x i64] */
} SliceRt;

static LLVMValueRef arr_slot(CgKernel *k, LLVMTypeRef arr, LLVMValueRef base, LLVMValueRef i) {
  LLVMValueRef idx[2] = {cg_i64(k, 0), i};
  return LLVMBuildInBoundsGEP2(k->b, arr, base, idx, 2, "");
}

static LLVMValueRef const_array(CgKernel *k, const int64_t *v, int n) {
  LLVMValueRef e[DM_MAX_RANK];
  for (int i = 0; i < n; i++) e[i] = cg_i64(k, v[i]);
  return LLVMConstArray2(k->m->t_i64, e, (uint64_t)n);
}

static LLVMValueRef clamp64(CgKernel *k, LLVMValueRef v, LLVMValueRef lo, LLVMValueRef hi) {
  LLVMBuilderRef b = k->b;
  v = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, v, lo, ""), lo, v, "");
  return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, v, hi, ""), hi, v, "");
}

static void slice_axis_rt(CgKernel *k, SliceRt *s, int j, LLVMValueRef dims, LLVMValueRef outd) {
  LLVMBuilderRef b = k->b;
  const KnNode *n = k->node;
  LLVMValueRef jj = cg_i64(k, j), zero = cg_i64(k, 0), one = cg_i64(k, 1), r = cg_i64(k, s->rank);
  LLVMValueRef ax = jj, st = one;
  if (n->n_inputs > 3 && n->inputs[3]) ax = dm_wrap_index(k, dm_load_i64(k, k->in[3], cg_in_dtype(k, 3), jj), r, "axis out of range");
  if (n->n_inputs > 4 && n->inputs[4]) st = dm_load_i64(k, k->in[4], cg_in_dtype(k, 4), jj);
  cg_fail_if(k, LLVMBuildICmp(b, LLVMIntEQ, st, zero, ""), KN_ERR_INVALID, "step is 0", st);
  LLVMValueRef d = LLVMBuildLoad2(b, k->m->t_i64, arr_slot(k, s->arr, dims, ax), "");
  LLVMValueRef sv = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), jj), ev = dm_load_i64(k, k->in[2], cg_in_dtype(k, 2), jj);
  LLVMValueRef pos = LLVMBuildICmp(b, LLVMIntSGT, st, zero, "");
  sv = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, sv, zero, ""), LLVMBuildAdd(b, sv, d, ""), sv, "");
  ev = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, ev, zero, ""), LLVMBuildAdd(b, ev, d, ""), ev, "");
  LLVMValueRef lo = LLVMBuildSelect(b, pos, zero, cg_i64(k, -1), "");
  LLVMValueRef hi = LLVMBuildSelect(b, pos, d, LLVMBuildSub(b, d, one, ""), "");
  sv = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, sv, hi, ""), hi, LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, sv, zero, ""), zero, sv, ""), "");
  ev = clamp64(k, ev, lo, hi);
  LLVMValueRef span = LLVMBuildSelect(b, pos, LLVMBuildSub(b, ev, sv, ""), LLVMBuildSub(b, sv, ev, ""), "");
  LLVMValueRef mag = LLVMBuildSelect(b, pos, st, LLVMBuildNeg(b, st, ""), "");
  LLVMValueRef cnt = LLVMBuildAdd(b, LLVMBuildUDiv(b, LLVMBuildSub(b, span, one, ""), mag, ""), one, "");
  cnt = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLE, span, zero, ""), zero, cnt, "");
  LLVMValueRef want = LLVMBuildLoad2(b, k->m->t_i64, arr_slot(k, s->arr, outd, ax), "");
  cg_fail_if(k, LLVMBuildICmp(b, LLVMIntNE, cnt, want, ""), KN_ERR_INVALID,
             "slice parameters select a different number of elements than the compiled shape", cnt);
  LLVMBuildStore(b, sv, arr_slot(k, s->arr, s->start, ax));
  LLVMBuildStore(b, st, arr_slot(k, s->arr, s->step, ax));
}

static void slice_rt_elem(CgKernel *k, LLVMValueRef *co, void *user) {
  const SliceRt *s = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef src = cg_i64(k, 0);
  for (int d = 0; d < s->rank; d++) {
    LLVMValueRef st = LLVMBuildLoad2(b, k->m->t_i64, arr_slot(k, s->arr, s->start, cg_i64(k, d)), "");
    LLVMValueRef sp = LLVMBuildLoad2(b, k->m->t_i64, arr_slot(k, s->arr, s->step, cg_i64(k, d)), "");
    LLVMValueRef c = LLVMBuildAdd(b, st, LLVMBuildMul(b, co[d], sp, ""), "");
    src = LLVMBuildAdd(b, src, LLVMBuildMul(b, c, cg_i64(k, s->in_str[d]), ""), "");
  }
  dm_copy_elem(k, k->out[0], dm_offset(k, co, s->out_str, s->rank), k->in[0], src, s->esize);
}

/* Slice whose lists are only known at run time: the parameters are clamped and checked against
 * the compiled output shape in the kernel, then a serial gather loop reads them. */
static KnStatus slice_dynamic(CgKernel *k, int r, int esize) {
  const KnShape *ls = cg_in_shape(k, 1);
  if (k->node->opset < 10 || !ls || ls->rank != 1 || ls->dims[0].value > r)
    return cg_unsupported(k, "slice lists unknown at compile time");
  int64_t in_dims[DM_MAX_RANK], out_dims[DM_MAX_RANK], zeros[DM_MAX_RANK] = {0}, ones[DM_MAX_RANK];
  SliceRt s = {.rank = r, .esize = esize, .arr = LLVMArrayType2(k->m->t_i64, (uint64_t)r)};
  dm_dims(cg_in_shape(k, 0), in_dims);
  dm_dims(cg_out_shape(k, 0), out_dims);
  dm_strides(in_dims, r, s.in_str);
  dm_strides(out_dims, r, s.out_str);
  for (int d = 0; d < r; d++) ones[d] = 1;
  s.start = cg_var(k, s.arr, const_array(k, zeros, r));
  s.step = cg_var(k, s.arr, const_array(k, ones, r));
  LLVMValueRef dims = cg_var(k, s.arr, const_array(k, in_dims, r));
  LLVMValueRef outd = cg_var(k, s.arr, const_array(k, out_dims, r));
  for (int j = 0; j < ls->dims[0].value; j++) slice_axis_rt(k, &s, j, dims, outd);
  dm_for_each(k, out_dims, r, false, slice_rt_elem, &s);
  return KN_OK;
}

KnStatus cg_lower_slice(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  if (s->rank > DM_MAX_RANK || s->rank == 0) return cg_unsupported(k, "rank 0 or above 32");
  SliceLists l;
  if (slice_lists(k->node, s->rank, &l)) return slice_static(k, &l, s->rank, dm_elem_bytes(t));
  return slice_dynamic(k, s->rank, dm_elem_bytes(t));
}

/* ---- Expand, Tile ------------------------------------------------------------------------- */
KnStatus cg_lower_expand(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0), *os = cg_out_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  if (os->rank > DM_MAX_RANK || s->rank > os->rank) return cg_unsupported(k, "rank above 32 or output rank below input's");
  for (int d = 0; d < s->rank; d++) {
    int64_t in = s->dims[d].value, out = os->dims[os->rank - s->rank + d].value;
    if (in != 1 && in != out) return cg_unsupported(k, "output shape is not a broadcast of the input's");
  }
  DmCopy c = {.rank = os->rank, .esize = dm_elem_bytes(t)};
  dm_dims(os, c.dims);
  dm_strides(c.dims, c.rank, c.dst_stride);
  cg_broadcast_strides(s, os, c.src_stride);
  dm_emit_copy(k, &c);
  return KN_OK;
}

/* The output viewed as [rep0, in0, rep1, in1, ...]: repetitions read the input with stride 0. */
KnStatus cg_lower_tile(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0), *os = cg_out_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int r = s->rank;
  if (2 * r > DM_MAX_RANK || os->rank != r) return cg_unsupported(k, "rank above 16");
  int64_t in_dims[DM_MAX_RANK], in_str[DM_MAX_RANK], out_dims[DM_MAX_RANK], out_str[DM_MAX_RANK];
  dm_dims(s, in_dims);
  dm_dims(os, out_dims);
  dm_strides(in_dims, r, in_str);
  dm_strides(out_dims, r, out_str);
  DmCopy c = {.rank = 2 * r, .esize = dm_elem_bytes(t)};
  for (int d = 0; d < r; d++) {
    if (in_dims[d] == 0 || out_dims[d] == 0) return KN_OK; /* empty output */
    int64_t rep = out_dims[d] / in_dims[d];
    if (rep * in_dims[d] != out_dims[d]) return cg_unsupported(k, "output is not a multiple of the input");
    /* the repeats input must agree with the shape compiled for */
    LLVMValueRef got = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), cg_i64(k, d));
    cg_fail_if(k, LLVMBuildICmp(k->b, LLVMIntNE, got, cg_i64(k, rep), ""), KN_ERR_INVALID,
               "repeats differ from the ones the model was compiled for", got);
    c.dims[2 * d] = rep, c.dims[2 * d + 1] = in_dims[d];
    c.dst_stride[2 * d] = in_dims[d] * out_str[d], c.dst_stride[2 * d + 1] = out_str[d];
    c.src_stride[2 * d] = 0, c.src_stride[2 * d + 1] = in_str[d];
  }
  dm_emit_copy(k, &c);
  return KN_OK;
}

/* ---- Pad ---------------------------------------------------------------------------------- */
enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

typedef struct PadArgs {
  int rank, mode, esize;
  KnDtype t;
  int64_t in_dims[DM_MAX_RANK], in_str[DM_MAX_RANK], out_dims[DM_MAX_RANK], out_str[DM_MAX_RANK];
  bool pads_known;             /* else read from input 1 at run time */
  int64_t pads[2 * DM_MAX_RANK]; /* before each dim, then after each, when known */
  bool value_input;            /* constant from input 2, else `value` */
  double value;
} PadArgs;

/* Pad entry i (i < rank: before dim i, else after dim i - rank). */
static LLVMValueRef pad_at(CgKernel *k, const PadArgs *p, int i) {
  if (p->pads_known) return cg_i64(k, p->pads[i]);
  return dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), cg_i64(k, i));
}

static LLVMValueRef pad_value(CgKernel *k, const PadArgs *p) {
  if (p->value_input) return cg_load(k, k->in[2], p->t, cg_i64(k, 0));
  return cg_const(k, p->t, p->value);
}

static LLVMValueRef max0(CgKernel *k, LLVMValueRef v) {
  return LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, v, cg_i64(k, 0), ""), cg_i64(k, 0), v, "");
}

/* The input index along dim d an output index o reads. Negative pads crop first, then the kept
 * run [lo, lo + m) is padded (as onnxruntime does): reflection and edges are those of the kept
 * run. *valid says whether o lies inside it (constant mode). The index is clamped into the
 * input even where the value is not used. */
static LLVMValueRef pad_coord(CgKernel *k, const PadArgs *p, int d, LLVMValueRef o, LLVMValueRef *valid) {
  LLVMBuilderRef b = k->b;
  int64_t n = p->in_dims[d];
  LLVMValueRef pb = pad_at(k, p, d), pe = pad_at(k, p, d + p->rank), zero = cg_i64(k, 0), one = cg_i64(k, 1);
  LLVMValueRef lo = max0(k, LLVMBuildNeg(b, pb, ""));
  LLVMValueRef m = LLVMBuildSub(b, LLVMBuildSub(b, cg_i64(k, n), lo, ""), max0(k, LLVMBuildNeg(b, pe, "")), "");
  LLVMValueRef c = LLVMBuildSub(b, o, max0(k, pb), "");
  if (p->mode == PAD_REFLECT) { /* periodic with period 2(m-1); a run of one repeats */
    LLVMValueRef m1 = LLVMBuildSub(b, m, one, "");
    LLVMValueRef per = LLVMBuildShl(b, LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, m1, one, ""), one, m1, ""), one, "");
    LLVMValueRef r = LLVMBuildSRem(b, c, per, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, r, zero, ""), LLVMBuildAdd(b, r, per, ""), r, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, r, m, ""), LLVMBuildSub(b, per, r, ""), r, "");
    c = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLE, m, one, ""), zero, r, "");
  } else {
    *valid = LLVMBuildAnd(b, *valid, LLVMBuildICmp(b, LLVMIntULT, c, m, ""), "");
    c = clamp64(k, c, zero, LLVMBuildSub(b, m, one, ""));
  }
  return clamp64(k, LLVMBuildAdd(b, lo, c, ""), zero, cg_i64(k, n - 1));
}

static void pad_elem(CgKernel *k, LLVMValueRef *co, void *user) {
  const PadArgs *p = user;
  LLVMValueRef src = cg_i64(k, 0), valid = LLVMConstInt(k->m->t_i1, 1, 0);
  for (int d = 0; d < p->rank; d++)
    src = LLVMBuildAdd(k->b, src, LLVMBuildMul(k->b, pad_coord(k, p, d, co[d], &valid), cg_i64(k, p->in_str[d]), ""), "");
  LLVMValueRef dst = dm_offset(k, co, p->out_str, p->rank);
  if (p->mode != PAD_CONSTANT) {
    dm_copy_elem(k, k->out[0], dst, k->in[0], src, p->esize);
    return;
  }
  LLVMValueRef v = cg_load(k, k->in[0], p->t, src);
  cg_store(k, k->out[0], p->t, dst, cg_select(k, valid, v, pad_value(k, p)));
}

/* Constant mode with known pads: fill the border, copy the overlap in one strided copy. */
static void pad_constant_static(CgKernel *k, const PadArgs *p) {
  DmCopy c = {.rank = p->rank, .esize = p->esize};
  bool covered = true;
  for (int d = 0; d < p->rank; d++) {
    int64_t pb = p->pads[d], lo = pb > 0 ? pb : 0;
    int64_t hi = pb + p->in_dims[d] < p->out_dims[d] ? pb + p->in_dims[d] : p->out_dims[d];
    c.dims[d] = hi > lo ? hi - lo : 0;
    covered &= c.dims[d] == p->out_dims[d];
    c.dst_off += lo * p->out_str[d];
    c.src_off += (lo - pb) * p->in_str[d];
    c.dst_stride[d] = p->out_str[d], c.src_stride[d] = p->in_str[d];
  }
  int64_t total = 1;
  for (int d = 0; d < p->rank; d++) total *= p->out_dims[d];
  if (!covered) dm_fill(k, k->out[0], p->t, pad_value(k, p), total, false);
  dm_emit_copy(k, &c);
}

/* Reads mode, pads and the constant (attributes before opset 11, inputs after). */
static KnStatus pad_args(CgKernel *k, PadArgs *p) {
  const KnNode *n = k->node;
  int r = p->rank;
  const char *mode = ir_attr_string(n, "mode", "constant");
  p->mode = strcmp(mode, "constant") == 0 ? PAD_CONSTANT : strcmp(mode, "reflect") == 0 ? PAD_REFLECT
          : strcmp(mode, "edge") == 0 ? PAD_EDGE : -1;
  if (p->mode < 0) return cg_unsupported(k, "pad mode");
  int64_t pads[2 * DM_MAX_RANK];
  int cnt = -1;
  if (n->opset < 11) {
    int64_t c;
    const int64_t *a = ir_attr_ints(n, n->opset < 2 ? "paddings" : "pads", &c);
    if (!a) a = ir_attr_ints(n, "pads", &c);
    if (a && c <= 2 * DM_MAX_RANK) memcpy(pads, a, (size_t)c * sizeof *a), cnt = (int)c;
    if (cnt < 0) return cg_unsupported(k, "missing pads");
    p->value = ir_attr_float(n, "value", 0.0f);
  } else {
    cnt = ir_input_ints(n, 1, pads, 2 * DM_MAX_RANK);
    p->value_input = n->n_inputs > 2 && n->inputs[2];
  }
  p->pads_known = cnt >= 0;
  if (p->pads_known && cnt != 2 * r) return cg_unsupported(k, "pads length is not twice the rank");
  for (int d = 0; p->pads_known && d < r; d++) {
    p->pads[d] = pads[d], p->pads[d + r] = pads[d + r];
    if (pads[d] + pads[d + r] != p->out_dims[d] - p->in_dims[d]) return cg_unsupported(k, "pads do not give the output's shape");
    int64_t kept = p->in_dims[d] - (pads[d] < 0 ? -pads[d] : 0) - (pads[d + r] < 0 ? -pads[d + r] : 0);
    if (p->mode != PAD_CONSTANT && kept <= 0 && p->out_dims[d] > 0)
      return cg_unsupported(k, "reflect or edge padding of a dim cropped to nothing");
  }
  return KN_OK;
}

KnStatus cg_lower_pad(CgKernel *k) {
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  if (s->rank > DM_MAX_RANK) return cg_unsupported(k, "rank above 32");
  PadArgs p = {.rank = s->rank, .t = t, .esize = dm_elem_bytes(t)};
  dm_dims(s, p.in_dims);
  dm_dims(cg_out_shape(k, 0), p.out_dims);
  dm_strides(p.in_dims, p.rank, p.in_str);
  dm_strides(p.out_dims, p.rank, p.out_str);
  if ((st = pad_args(k, &p)) != KN_OK) return st;
  if (!p.pads_known) { /* the pads must agree with the shape compiled for */
    const KnShape *ps = cg_in_shape(k, 1);
    if (!ps || ps->rank != 1 || ps->dims[0].value != 2 * p.rank) return cg_unsupported(k, "pads length is not twice the rank");
    for (int d = 0; d < p.rank; d++) {
      LLVMValueRef pb = pad_at(k, &p, d), pe = pad_at(k, &p, d + p.rank), sum = LLVMBuildAdd(k->b, pb, pe, "");
      cg_fail_if(k, LLVMBuildICmp(k->b, LLVMIntNE, sum, cg_i64(k, p.out_dims[d] - p.in_dims[d]), ""), KN_ERR_INVALID,
                 "pads differ from the ones the model was compiled for", sum);
      LLVMValueRef kept = LLVMBuildAdd(k->b, cg_i64(k, p.in_dims[d]), LLVMBuildAdd(k->b, pb, pe, ""), ""); /* crops only */
      kept = LLVMBuildSub(k->b, kept, LLVMBuildAdd(k->b, max0(k, pb), max0(k, pe), ""), "");
      if (p.mode != PAD_CONSTANT && p.out_dims[d] > 0)
        cg_fail_if(k, LLVMBuildICmp(k->b, LLVMIntSLE, kept, cg_i64(k, 0), ""), KN_ERR_INVALID,
                   "reflect or edge padding of a dim cropped to nothing", kept);
    }
  }
  int64_t in_n = cg_numel(s), out_n = cg_numel(cg_out_shape(k, 0));
  if (out_n == 0) return KN_OK;
  if (in_n == 0) {
    if (p.mode != PAD_CONSTANT) return cg_unsupported(k, "reflect or edge padding of an empty input");
    dm_fill(k, k->out[0], t, pad_value(k, &p), out_n, false);
    return KN_OK;
  }
  if (p.mode == PAD_CONSTANT && p.pads_known) pad_constant_static(k, &p);
  else dm_for_each(k, p.out_dims, p.rank, true, pad_elem, &p);
  return KN_OK;
}

/* ---- ReverseSequence ---------------------------------------------------------------------- */
typedef struct RevSeq {
  int64_t T, stride_t, stride_b, inner;
  int esize;
} RevSeq;

static void revseq_elem(CgKernel *k, LLVMValueRef *co, void *user) {
  const RevSeq *r = user;
  LLVMBuilderRef b = k->b;
  LLVMValueRef bi = co[0], t = co[1];
  LLVMValueRef len = dm_load_i64(k, k->in[1], cg_in_dtype(k, 1), bi);
  cg_fail_if(k, LLVMBuildICmp(b, LLVMIntUGT, len, cg_i64(k, r->T), ""), KN_ERR_INVALID,
             "sequence length out of range", len);
  LLVMValueRef rev = LLVMBuildSub(b, LLVMBuildSub(b, len, cg_i64(k, 1), ""), t, "");
  LLVMValueRef src_t = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, t, len, ""), rev, t, "");
  LLVMValueRef boff = LLVMBuildMul(b, bi, cg_i64(k, r->stride_b), "");
  LLVMValueRef so = LLVMBuildAdd(b, boff, LLVMBuildMul(b, src_t, cg_i64(k, r->stride_t), ""), "");
  LLVMValueRef dof = LLVMBuildAdd(b, boff, LLVMBuildMul(b, t, cg_i64(k, r->stride_t), ""), "");
  cg_memcpy(k, dm_ptr(k, k->out[0], r->esize, dof), dm_ptr(k, k->in[0], r->esize, so), cg_i64(k, r->inner * r->esize));
}

KnStatus cg_lower_reverse_sequence(CgKernel *k) {
  const KnNode *n = k->node;
  const KnShape *s = cg_in_shape(k, 0);
  KnDtype t = cg_in_dtype(k, 0);
  KnStatus st = dm_require_dtype(k, t);
  if (st != KN_OK) return st;
  int64_t ta = ir_attr_int(n, "time_axis", 0), ba = ir_attr_int(n, "batch_axis", 1);
  if (s->rank < 2 || !((ta == 0 && ba == 1) || (ta == 1 && ba == 0)))
    return cg_unsupported(k, "time_axis and batch_axis must be 0 and 1");
  int64_t dims[DM_MAX_RANK], inner = 1;
  if (s->rank > DM_MAX_RANK) return cg_unsupported(k, "rank above 32");
  dm_dims(s, dims);
  for (int d = 2; d < s->rank; d++) inner *= dims[d];
  int64_t T = dims[ta], B = dims[ba];
  RevSeq r = {T, ta == 0 ? B * inner : inner, ba == 0 ? T * inner : inner, inner, dm_elem_bytes(t)};
  if (inner == 0) return KN_OK;
  int64_t loop[2] = {B, T};
  dm_for_each(k, loop, 2, true, revseq_elem, &r);
  return KN_OK;
}
