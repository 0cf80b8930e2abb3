#!/usr/bin/python3
"""gemm_bench.py - kiln's GEMM and GEMV speed against the machine's peaks, at 1 thread.

SGEMM 1024x1024x1024 (matmul_1024) in GFLOP/s against the FP32 FMA peak measured by fma_peak, and
GEMV 1x4096 x 4096x4096 (gemv_4096) in GB/s of weights streamed against the read bandwidth
measured by mem_bandwidth. Targets: both at least 80%.

Usage: gemm_bench.py --kiln BUILD/kiln [--peak-json FILE | --fma-peak PROG] [--bw-json FILE |
                     --mem-bandwidth PROG] [--models DIR] [--warmup 3] [--iters 10] [--json FILE]
--models DIR holds matmul_1024/ and gemv_4096/ (make_bench_models.py writes them); without it they
are generated in a temporary folder. fma_peak and mem_bandwidth default to BUILD/bench/ (where the
top-level CMake build puts them), else next to the kiln binary."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchjson import run_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = 0.80
# name -> (M, K, N) of Y[M,N] = X[M,K] x W[K,N]
SHAPES = {"matmul_1024": (1024, 1024, 1024), "gemv_4096": (1, 4096, 4096)}


def tool(explicit, kiln, name):
    if explicit:
        return explicit
    kdir = os.path.dirname(os.path.abspath(kiln))
    for c in (os.path.join(kdir, "bench", name), os.path.join(kdir, name)):
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    sys.exit(f"gemm_bench: cannot find {name} next to {kiln}; build bench/ or pass --{name.replace('_', '-')}")


def peak(json_file, prog, args):
    if json_file:
        with open(json_file) as f:
            return json.load(f)
    return run_json([prog, "--threads", "1", "--json"] + args)


def model_dir(models, tmp, name):
    if models and os.path.isfile(os.path.join(models, name, "model.onnx")):
        return os.path.join(models, name)
    sys.path.insert(0, HERE)
    import make_bench_models  # needs onnx
    m, k, n = SHAPES[name]
    folder = os.path.join(tmp, name)
    if not os.path.isdir(folder):
        print(f"gemm_bench: writing {folder}", file=sys.stderr)
        rng = make_bench_models.np.random.default_rng(1)
        g, x = make_bench_models.matmul_model(name, m, k, n, rng)
        make_bench_models.write(tmp, name, g, x)
    return folder


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--peak-json", help="fma_peak --json output to use instead of running it")
    p.add_argument("--bw-json", help="mem_bandwidth --json output to use instead of running it")
    p.add_argument("--fma-peak")
    p.add_argument("--mem-bandwidth")
    p.add_argument("--models")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--json", help="write the figures as JSON to this file ('-': stdout)")
    args = p.parse_args(argv[1:])
    fma = peak(args.peak_json, None if args.peak_json else tool(args.fma_peak, args.kiln, "fma_peak"), [])
    bw = peak(args.bw_json, None if args.bw_json else tool(args.mem_bandwidth, args.kiln, "mem_bandwidth"), [])
    peak_gflops, peak_gbps = float(fma["gflops_1t"]), float(bw["gbps_1t"])
    res = {"peak_gflops_1t": peak_gflops, "bandwidth_gbps_1t": peak_gbps, "target": TARGET}
    with tempfile.TemporaryDirectory(prefix="kiln-gemm-") as tmp:
        for name, (m, k, n) in SHAPES.items():
            folder = model_dir(args.models, tmp, name)
            cmd = [args.kiln, "bench", os.path.join(folder, "model.onnx"), "--inputs",
                   os.path.join(folder, "test_data_set_0"), "--threads", "1", "--warmup", str(args.warmup),
                   "--iters", str(args.iters), "--json"]
            r = run_json(cmd)
            sec = r["median_ms"] * 1e-3
            res[name] = {"median_ms": r["median_ms"], "min_ms": r.get("min_ms"),
                         "gflops": 2.0 * m * k * n / sec * 1e-9, "gbps": 4.0 * k * n / sec * 1e-9}
    mm, mv = res["matmul_1024"], res["gemv_4096"]
    mm["pct_of_peak"] = 100.0 * mm["gflops"] / peak_gflops
    mv["pct_of_bandwidth"] = 100.0 * mv["gbps"] / peak_gbps
    res["targets_met"] = mm["pct_of_peak"] >= 100 * TARGET and mv["pct_of_bandwidth"] >= 100 * TARGET
    ok = lambda pct: "met" if pct >= 100 * TARGET else "NOT met"  # noqa: E731
    print(f"machine, 1 thread: FP32 FMA peak {peak_gflops:.1f} GFLOP/s ({fma.get('isa', '?')}), "
          f"read bandwidth {peak_gbps:.1f} GB/s")
    print(f"SGEMM 1024^3   : {mm['median_ms']:8.3f} ms  {mm['gflops']:7.1f} GFLOP/s  "
          f"{mm['pct_of_peak']:5.1f}% of peak       (target >= {100 * TARGET:.0f}%: {ok(mm['pct_of_peak'])})")
    print(f"GEMV 1x4096^2  : {mv['median_ms']:8.3f} ms  {mv['gbps']:7.1f} GB/s     "
          f"{mv['pct_of_bandwidth']:5.1f}% of bandwidth  (target >= {100 * TARGET:.0f}%: {ok(mv['pct_of_bandwidth'])})")
    if args.json:
        text = json.dumps(res, indent=1) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    return 0 if res["targets_met"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except RuntimeError as e:
        sys.exit(f"gemm_bench: {e}")
