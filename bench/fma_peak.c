// fma_peak: measures this machine's FP32 FMA throughput (GFLOP/s), the peak GEMM targets refer to.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define FMA_X86 1
#else
#define FMA_X86 0
#endif

// Independent accumulator chains: latency 4-5 cycles x 2 FMA ports needs at least 10 in flight;
// 20 leaves margin and still fits the 32 zmm registers next to the two operands.
#define AVX512_CHAINS 20

typedef struct {
    const char *isa;
    int lanes;   // FP32 lanes per vector
    int chains;  // independent accumulators the kernel updates per iteration
    float (*kernel)(long iters, float mul, float add);
} fma_impl;

static volatile float g_sink;

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#if FMA_X86
// The chains are named variables, not an array: at -O2 an array of vectors stays in memory and
// every FMA would wait on a store and a load.
#define CHAINS_20(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) \
    X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19)
#define CHAINS_12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

// Each chain does acc = acc * mul + add; mul and add come from the caller so nothing folds.
__attribute__((target("avx512f"))) static float kernel_avx512(long iters, float mul, float add) {
    __m512 m = _mm512_set1_ps(mul), a = _mm512_set1_ps(add), s = _mm512_setzero_ps();
#define DECL(c) __m512 acc##c = _mm512_set1_ps((float)(c) * 0.001f);
#define STEP(c) acc##c = _mm512_fmadd_ps(acc##c, m, a);
#define SUM(c) s = _mm512_add_ps(s, acc##c);
    CHAINS_20(DECL)
    for (long i = 0; i < iters; i++) {
        CHAINS_20(STEP)
    }
    CHAINS_20(SUM)
#undef DECL
#undef STEP
#undef SUM
    return _mm512_reduce_add_ps(s);
}

// 16 ymm registers: 12 chains plus the two operands, so nothing spills.
__attribute__((target("avx2,fma"))) static float kernel_avx2(long iters, float mul, float add) {
    __m256 m = _mm256_set1_ps(mul), a = _mm256_set1_ps(add), s = _mm256_setzero_ps();
#define DECL(c) __m256 acc##c = _mm256_set1_ps((float)(c) * 0.001f);
#define STEP(c) acc##c = _mm256_fmadd_ps(acc##c, m, a);
#define SUM(c) s = _mm256_add_ps(s, acc##c);
    CHAINS_12(DECL)
    for (long i = 0; i < iters; i++) {
        CHAINS_12(STEP)
    }
    CHAINS_12(SUM)
#undef DECL
#undef STEP
#undef SUM
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

// No FMA before AVX2: a multiply and an add per lane, the same 2 flops.
static float kernel_sse(long iters, float mul, float add) {
    __m128 m = _mm_set1_ps(mul), a = _mm_set1_ps(add), s = _mm_setzero_ps();
#define DECL(c) __m128 acc##c = _mm_set1_ps((float)(c) * 0.001f);
#define STEP(c) acc##c = _mm_add_ps(_mm_mul_ps(acc##c, m), a);
#define SUM(c) s = _mm_add_ps(s, acc##c);
    CHAINS_12(DECL)
    for (long i = 0; i < iters; i++) {
        CHAINS_12(STEP)
    }
    CHAINS_12(SUM)
#undef DECL
#undef STEP
#undef SUM
    float out[4];
    _mm_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3];
}
#endif

// Portable fallback: the compiler vectorizes the inner loop to whatever the target has.
static float kernel_scalar(long iters, float mul, float add) {
    float acc[32];
    for (int c = 0; c < 32; c++)
        acc[c] = (float)c * 0.001f;
    for (long i = 0; i < iters; i++) {
        for (int c = 0; c < 32; c++)
            acc[c] = acc[c] * mul + add;
    }
    float s = 0.0f;
    for (int c = 0; c < 32; c++)
        s += acc[c];
    return s;
}

static fma_impl pick_impl(const char *force) {
#if FMA_X86
    __builtin_cpu_init();
    int want_any = force == NULL || force[0] == '\0';
    if ((want_any || strcmp(force, "avx512") == 0) && __builtin_cpu_supports("avx512f"))
        return (fma_impl){"avx512f", 16, AVX512_CHAINS, kernel_avx512};
    if ((want_any || strcmp(force, "avx2") == 0) && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
        return (fma_impl){"avx2+fma", 8, 12, kernel_avx2};
    if (want_any || strcmp(force, "sse") == 0)
        return (fma_impl){"sse", 4, 12, kernel_sse};
#endif
    (void)force;
    return (fma_impl){"scalar", 1, 32, kernel_scalar};
}

static double flops_per_iter(const fma_impl *impl) {
    // A fused instruction is a multiply and an add; the SSE and scalar paths issue them
    // separately and count the same 2 flops per lane.
    return (double)impl->chains * impl->lanes * 2.0;
}

typedef struct {
    double wall;  // GFLOP/s over wall time: what a program sees on this machine right now
    double cpu;   // sum over threads of GFLOP/s over each thread's CPU time: the hardware's rate,
                  // blind to time the scheduler gave to other processes on a shared machine
} fma_rate;

static double thread_cpu_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// One timed repetition on `threads` threads, each running `iters` iterations.
static fma_rate run_once(const fma_impl *impl, int threads, long iters) {
    double flops = flops_per_iter(impl) * (double)iters, cpu_rate = 0.0;
    double t0 = now_sec();
#pragma omp parallel num_threads(threads) reduction(+ : cpu_rate)
    {
        double c0 = thread_cpu_sec();
        float r = impl->kernel(iters, 0.999999f, 1e-7f);
        double dc = thread_cpu_sec() - c0;
        if (r == 12345.678f)  // never true; keeps the result live
            g_sink = r;
        cpu_rate += dc > 0.0 ? flops / dc * 1e-9 : 0.0;
    }
    double dt = now_sec() - t0;
    return (fma_rate){flops * threads / dt * 1e-9, cpu_rate};
}

// Best of `reps` repetitions of about `seconds` each: noise only ever slows a run down.
static fma_rate measure(const fma_impl *impl, int threads, int reps, double seconds) {
    long iters = 1000;
    for (;;) {  // calibrate on one thread until a run is long enough to time
        double t0 = thread_cpu_sec();
        float r = impl->kernel(iters, 0.999999f, 1e-7f);
        if (r == 12345.678f)
            g_sink = r;
        double dt = thread_cpu_sec() - t0;
        if (dt > 0.02 || iters > (1L << 40)) {
            iters = (long)((double)iters * seconds / (dt > 0 ? dt : 1e-9));
            break;
        }
        iters *= 4;
    }
    if (iters < 1)
        iters = 1;
    fma_rate best = {0.0, 0.0};
    for (int r = 0; r < reps; r++) {
        fma_rate g = run_once(impl, threads, iters);
        best.wall = g.wall > best.wall ? g.wall : best.wall;
        best.cpu = g.cpu > best.cpu ? g.cpu : best.cpu;
    }
    return best;
}

static void usage(FILE *f) {
    fprintf(f, "usage: fma_peak [--threads N] [--reps R] [--seconds S] [--isa avx512|avx2|sse|scalar] [--json]\n"
               "FP32 FMA throughput, 1 thread and N threads (default: all cores), best of R runs.\n");
}

int main(int argc, char **argv) {
    int threads = omp_get_num_procs(), reps = 5, json = 0;
    double seconds = 0.2;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--threads") == 0 && v) {
            threads = atoi(v), i++;
        } else if (strcmp(a, "--reps") == 0 && v) {
            reps = atoi(v), i++;
        } else if (strcmp(a, "--seconds") == 0 && v) {
            seconds = atof(v), i++;
        } else if (strcmp(a, "--isa") == 0 && v) {
            isa = v, i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (threads < 1 || threads > 4096 || reps < 1 || reps > 1000 || !(seconds > 0.0 && seconds < 60.0)) {
        fprintf(stderr, "fma_peak: --threads, --reps or --seconds out of range\n");
        return 2;
    }
    fma_impl impl = pick_impl(isa);
    if (isa && strcmp(isa, "scalar") != 0 && impl.kernel == kernel_scalar) {
        fprintf(stderr, "fma_peak: --isa %s is not available on this CPU\n", isa);
        return 2;
    }
    fma_rate one = measure(&impl, 1, reps, seconds);
    fma_rate all = threads > 1 ? measure(&impl, threads, reps, seconds) : one;
    if (json) {
        printf("{\"tool\":\"fma_peak\",\"isa\":\"%s\",\"vector_bits\":%d,\"threads\":%d,\"reps\":%d,"
               "\"seconds\":%.3f,\"gflops_1t\":%.2f,\"gflops_nt\":%.2f,\"gflops_per_core\":%.2f,"
               "\"gflops_1t_wall\":%.2f,\"gflops_nt_wall\":%.2f}\n",
               impl.isa, impl.lanes * 32, threads, reps, seconds, one.cpu, all.cpu, all.cpu / threads,
               one.wall, all.wall);
    } else {
        printf("FP32 FMA peak (%s, %d-bit vectors, best of %d x %.2f s; CPU time / wall time)\n", impl.isa,
               impl.lanes * 32, reps, seconds);
        printf("  1 thread  : %8.1f / %8.1f GFLOP/s\n", one.cpu, one.wall);
        printf("  %2d threads: %8.1f / %8.1f GFLOP/s total, %.1f per core\n", threads, all.cpu, all.wall,
               all.cpu / threads);
    }
    return 0;
}
