/* cg_entry.c - the model's entry function: calls each node's kernel in order with the buffers the
 * plan assigned, stops at the first failing kernel, then fills graph outputs that are not written
 * by a kernel (an input or weight passed through, or one value listed twice). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

typedef struct EntryArgs {
  LLVMValueRef ctx, inputs, outputs, weights, arena;
  LLVMValueRef profiling; /* i1: ctx->profile is set (read once per run) */
} EntryArgs;

static LLVMValueRef table_entry(CgModule *m, LLVMValueRef table, int index) {
  LLVMValueRef idx = LLVMConstInt(m->t_i64, (unsigned long long)index, 0);
  return LLVMBuildLoad2(m->b, m->t_ptr, LLVMBuildInBoundsGEP2(m->b, m->t_ptr, table, &idx, 1, ""), "");
}

static LLVMValueRef slot_pointer(CgModule *m, const EntryArgs *a, const CgSlot *s) {
  switch (s->home) {
  case CG_HOME_INPUT: return table_entry(m, a->inputs, s->index);
  case CG_HOME_OUTPUT: return table_entry(m, a->outputs, s->index);
  case CG_HOME_WEIGHT: return table_entry(m, a->weights, s->index);
  case CG_HOME_ARENA: {
    LLVMValueRef off = LLVMConstInt(m->t_i64, s->offset, 0);
    return LLVMBuildInBoundsGEP2(m->b, m->t_i8, a->arena, &off, 1, "");
  }
  default: return LLVMConstNull(m->t_ptr);
  }
}

/* if (status != 0) return status; */
static void return_if_failed(CgModule *m, LLVMValueRef fn, LLVMValueRef status) {
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(m->ctx, fn, "fail");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(m->ctx, fn, "next");
  LLVMBuildCondBr(m->b, LLVMBuildICmp(m->b, LLVMIntNE, status, LLVMConstInt(m->t_i32, 0, 0), ""), fail, next);
  LLVMPositionBuilderAtEnd(m->b, fail);
  LLVMBuildRet(m->b, status);
  LLVMPositionBuilderAtEnd(m->b, next);
}

/* if (profiling) kn_rt_profile_begin/end(ctx, site): one predictable branch per kernel when off. */
static void profile_hook(CgModule *m, LLVMValueRef entry, const EntryArgs *a, const char *fn, int site) {
  LLVMBasicBlockRef on = LLVMAppendBasicBlockInContext(m->ctx, entry, "profile");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(m->ctx, entry, "profiled");
  LLVMBuildCondBr(m->b, a->profiling, on, next);
  LLVMPositionBuilderAtEnd(m->b, on);
  LLVMTypeRef params[2] = {m->t_ptr, m->t_i32};
  LLVMTypeRef fty = LLVMFunctionType(m->t_void, params, 2, 0);
  LLVMValueRef args[2] = {a->ctx, LLVMConstInt(m->t_i32, (unsigned long long)site, 0)};
  LLVMBuildCall2(m->b, fty, cg_extern_fn(m, fn, fty), args, 2, "");
  LLVMBuildBr(m->b, next);
  LLVMPositionBuilderAtEnd(m->b, next);
}

static LLVMValueRef profiling_flag(CgModule *m, LLVMValueRef ctx) {
  LLVMValueRef off = LLVMConstInt(m->t_i64, offsetof(KnRtCtx, profile), 0);
  LLVMValueRef field = LLVMBuildInBoundsGEP2(m->b, m->t_i8, ctx, &off, 1, "");
  LLVMValueRef prof = LLVMBuildLoad2(m->b, m->t_ptr, field, "profile");
  return LLVMBuildICmp(m->b, LLVMIntNE, prof, LLVMConstNull(m->t_ptr), "profiling");
}

/* Calls the kernel of node (call site `site`); returns early with its status when non-zero. */
static void call_kernel(CgModule *m, LLVMValueRef entry, const EntryArgs *a, const CgPlan *plan,
                        const KnNode *n, LLVMValueRef kernel, int site) {
  int nargs = 1 + n->n_inputs + n->n_outputs;
  LLVMValueRef args[nargs];
  args[0] = a->ctx;
  for (int i = 0; i < n->n_inputs; i++)
    args[1 + i] = n->inputs[i] ? slot_pointer(m, a, &plan->slots[n->inputs[i]->id]) : LLVMConstNull(m->t_ptr);
  for (int i = 0; i < n->n_outputs; i++)
    args[1 + n->n_inputs + i] =
        n->outputs[i] ? slot_pointer(m, a, &plan->slots[n->outputs[i]->id]) : LLVMConstNull(m->t_ptr);
  profile_hook(m, entry, a, "kn_rt_profile_begin", site);
  LLVMValueRef st = LLVMBuildCall2(m->b, LLVMGlobalGetValueType(kernel), kernel, args, (unsigned)nargs, "");
  profile_hook(m, entry, a, "kn_rt_profile_end", site);
  return_if_failed(m, entry, st);
}

/* Emits one kernel per distinct kernel key; nodes with equal keys share it. */
static KnStatus emit_kernels(CgModule *m, KnGraph *g, LLVMValueRef *kernels, KnError *err) {
  char **keys = calloc((size_t)g->n_nodes + 1, sizeof *keys);
  KnStatus st = keys ? KN_OK : kn_fail(err, KN_ERR_NOMEM, "out of memory");
  for (int i = 0; i < g->n_nodes && st == KN_OK; i++) {
    char key[8192];
    kernels[i] = NULL;
    if (cg_kernel_key(g->nodes[i], key, sizeof key)) {
      for (int j = 0; j < i && !kernels[i]; j++)
        if (keys[j] && strcmp(keys[j], key) == 0) kernels[i] = kernels[j];
      keys[i] = strdup(key);
    }
    if (!kernels[i]) st = cg_emit_kernel(m, g->nodes[i], &kernels[i], err);
  }
  for (int i = 0; keys && i < g->n_nodes; i++) free(keys[i]);
  free(keys);
  return st;
}

/* Kernel calls per part of the entry: LLVM's optimizer is superlinear in a function's size, so a
 * graph of thousands of nodes is called through parts of this many calls each. */
#define ENTRY_PART_CALLS 128

static LLVMValueRef new_entry_function(CgModule *m, const char *name, bool internal, EntryArgs *a) {
  LLVMTypeRef params[5] = {m->t_ptr, m->t_ptr, m->t_ptr, m->t_ptr, m->t_ptr};
  LLVMValueRef fn = LLVMAddFunction(m->mod, name, LLVMFunctionType(m->t_i32, params, 5, 0));
  if (internal) {
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_set_noinline(m, fn);
  }
  *a = (EntryArgs){LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), LLVMGetParam(fn, 3),
                   LLVMGetParam(fn, 4), NULL};
  LLVMPositionBuilderAtEnd(m->b, LLVMAppendBasicBlockInContext(m->ctx, fn, "entry"));
  a->profiling = profiling_flag(m, a->ctx);
  return fn;
}

/* One part: the kernels of nodes [first, end); returns the first failing kernel's status. */
static LLVMValueRef emit_part(CgModule *m, const char *entry_name, int part, KnGraph *g, const CgPlan *plan,
                              LLVMValueRef *kernels, int first, int end) {
  char name[160];
  snprintf(name, sizeof name, "%s_part%d", entry_name, part);
  EntryArgs a;
  LLVMValueRef fn = new_entry_function(m, name, true, &a);
  for (int i = first; i < end; i++) call_kernel(m, fn, &a, plan, g->nodes[i], kernels[i], i);
  LLVMBuildRet(m->b, LLVMConstInt(m->t_i32, 0, 0));
  return fn;
}

KnStatus cg_emit_entry(CgModule *m, KnGraph *g, const CgPlan *plan, const char *name,
                       KnError *err) {
  LLVMValueRef kernels[g->n_nodes + 1];
  KnStatus st = emit_kernels(m, g, kernels, err);
  if (st != KN_OK) return st;
  int n_parts = (g->n_nodes + ENTRY_PART_CALLS - 1) / ENTRY_PART_CALLS;
  LLVMValueRef parts[n_parts + 1];
  for (int p = 0; p < n_parts && n_parts > 1; p++) {
    int end = (p + 1) * ENTRY_PART_CALLS < g->n_nodes ? (p + 1) * ENTRY_PART_CALLS : g->n_nodes;
    parts[p] = emit_part(m, name, p, g, plan, kernels, p * ENTRY_PART_CALLS, end);
  }
  EntryArgs a;
  LLVMValueRef entry = new_entry_function(m, name, false, &a);
  if (n_parts > 1) { /* each part returns its status like a kernel does */
    for (int p = 0; p < n_parts; p++) {
      LLVMValueRef args[5] = {a.ctx, a.inputs, a.outputs, a.weights, a.arena};
      LLVMValueRef st_p = LLVMBuildCall2(m->b, LLVMGlobalGetValueType(parts[p]), parts[p], args, 5, "");
      return_if_failed(m, entry, st_p);
    }
  } else {
    for (int i = 0; i < g->n_nodes; i++) call_kernel(m, entry, &a, plan, g->nodes[i], kernels[i], i);
  }
  for (int i = 0; i < g->n_outputs; i++) {
    const CgSlot *s = &plan->slots[g->outputs[i]->id];
    if ((s->home == CG_HOME_OUTPUT && s->index == i) || s->home == CG_HOME_NONE) continue;
    LLVMValueRef dst = table_entry(m, a.outputs, i);
    LLVMBuildMemCpy(m->b, dst, 1, slot_pointer(m, &a, s), 1, LLVMConstInt(m->t_i64, s->nbytes, 0));
  }
  LLVMBuildRet(m->b, LLVMConstInt(m->t_i32, 0, 0));
  return KN_OK;
}
