/* cg_target.c - which machine code is generated for: LLVM's target registry and target machines
 * for the host (JIT, default AOT) or another triple (cross-compiled AOT). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#include <llvm-c/Target.h>

#include "codegen/cg_build.h"

static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
/* The targets kiln generates code for: the hosts it runs on and the edge boards it cross-compiles
 * to. Naming them (not LLVMInitializeAll*) lets the kiln binary link only these two back ends. */
static void init_targets(void) {
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
}
void cg_init_llvm(void) { pthread_once(&llvm_once, init_targets); }

static LLVMCodeGenOptLevel codegen_level(int opt_level) {
  return opt_level <= 0 ? LLVMCodeGenLevelNone
         : opt_level == 1 ? LLVMCodeGenLevelLess
         : opt_level == 2 ? LLVMCodeGenLevelDefault
                          : LLVMCodeGenLevelAggressive;
}

/* LLVM accepts "aarch64-linux-gnu" and normalizes it; the host's triple is the default. */
static char *target_triple(const CgOptions *o) {
  return o->triple ? LLVMNormalizeTargetTriple(o->triple) : LLVMGetDefaultTargetTriple();
}

static bool is_host(const char *triple) {
  char *host = LLVMGetDefaultTargetTriple();
  bool same = strcmp(host, triple) == 0;
  LLVMDisposeMessage(host);
  return same;
}

/* LLVM reports an unknown CPU or feature name only as a warning on stderr, and then aborts the
 * process when it generates code for it ("64-bit code requested on a subtarget that doesn't
 * support it"). So a CPU or feature list the caller names is tried on a throwaway target machine
 * with stderr captured, and refused when LLVM complains. Only then: redirecting fd 2 is process-
 * wide, so it is serialized and kept to this rare path. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static KnStatus probe_names(LLVMTargetRef target, const char *triple, const char *cpu, const char *features,
                            KnError *err) {
  pthread_mutex_lock(&probe_lock);
  char text[1024] = "";
  FILE *cap = tmpfile();
  int saved = cap ? dup(2) : -1;
  if (saved >= 0) {
    fflush(stderr);
    dup2(fileno(cap), 2);
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelNone, LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  if (saved >= 0) {
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    size_t n = fread(text, 1, sizeof text - 1, cap);
    text[n] = 0;
  }
  if (cap) fclose(cap);
  if (tm) LLVMDisposeTargetMachine(tm);
  pthread_mutex_unlock(&probe_lock);
  char *bad = strstr(text, "is not a recognized");
  if (!bad) return KN_OK;
  char *start = bad;
  while (start > text && start[-1] != '\n') start--;
  char *end = strchr(bad, '\n');
  return kn_fail(err, KN_ERR_INVALID, "target %s: %.*s", triple, (int)(end ? end - start : (long)strlen(start)), start);
}

KnStatus cg_target_machine(const CgOptions *o, bool for_jit, LLVMTargetMachineRef *out, KnError *err) {
  cg_init_llvm();
  *out = NULL;
  char *triple = target_triple(o), *msg = NULL;
  LLVMTargetRef target;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    kn_fail(err, KN_ERR_UNSUPPORTED, "no LLVM target for '%s': %s", triple, msg ? msg : "");
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return KN_ERR_UNSUPPORTED;
  }
  bool host = is_host(triple);
  char *cpu = host ? LLVMGetHostCPUName() : NULL, *features = host ? LLVMGetHostCPUFeatures() : NULL;
  const char *use_cpu = o->cpu ? o->cpu : host ? cpu : "generic";
  /* A named CPU brings its own features; the host's feature list would contradict it. */
  const char *use_features = o->features ? o->features : host && !o->cpu ? features : "";
  KnStatus st = o->cpu || o->features ? probe_names(target, triple, use_cpu, use_features, err) : KN_OK;
  if (st != KN_OK) {
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(triple);
    return st;
  }
  *out = LLVMCreateTargetMachine(target, triple, use_cpu, use_features, codegen_level(o->opt_level), LLVMRelocPIC,
                                 for_jit ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
  LLVMDisposeMessage(triple);
  return *out ? KN_OK : kn_fail(err, KN_ERR_INTERNAL, "cannot create an LLVM target machine");
}

/* CPUs named without a feature list (--cpu) whose widest float vectors are 512 / 256 bits. */
static const char *const cpus_512[] = {"x86-64-v4", "skylake-avx512", "cascadelake", "cooperlake", "cannonlake",
                                       "icelake-client", "icelake-server", "tigerlake", "rocketlake",
                                       "sapphirerapids", "emeraldrapids", "graniterapids", "znver4", "znver5", NULL};
static const char *const cpus_256[] = {"x86-64-v3", "haswell", "broadwell", "skylake", "alderlake", "raptorlake",
                                       "meteorlake", "znver1", "znver2", "znver3", "bdver4", NULL};

static bool named(const char *cpu, const char *const *list) {
  for (int i = 0; list[i]; i++)
    if (strcmp(cpu, list[i]) == 0) return true;
  return false;
}

void cg_target_vectors(LLVMTargetMachineRef tm, int *lanes, int *regs) {
  char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
  char *features = LLVMGetTargetMachineFeatureString(tm);
  *lanes = 4, *regs = 16; /* SSE2: every x86-64 */
  if (strncmp(triple, "aarch64", 7) == 0 || strncmp(triple, "arm64", 5) == 0) {
    *regs = 32; /* NEON: 32 x 128 bits */
  } else if (strstr(features, "+avx512f") || named(cpu, cpus_512)) {
    *lanes = 16, *regs = 32;
  } else if (strstr(features, "+avx") || named(cpu, cpus_256)) {
    *lanes = 8;
  }
  LLVMDisposeMessage(triple);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(features);
}
