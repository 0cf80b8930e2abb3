#!/usr/bin/python3
"""side_by_side.py - kiln against ONNX Runtime on the same models, inputs and thread counts.

For each model and thread count, R rounds; each round runs `kiln bench MODEL ... --json` and
`node bench/ort/ort_bench.mjs MODEL ...` once each, as separate processes, in alternating order
(kiln first in even rounds, ORT first in odd ones: ABAB then BABA). Each side's figure is the
median of its per-round medians. Node's binding adds a per-run floor (measured with an Identity
model at each thread count) that is taken off ORT's figure (never below 0.001 ms). Writes a
markdown table of medians, ratios (kiln / ORT) and peak RSS, with the geometric mean of the ratios
per thread count against the targets (geomean <= 0.8, no model above 1.05).

Usage: side_by_side.py --kiln BUILD/kiln [--models DIR[,DIR...]] [--threads 1,2] [--rounds 3]
                       [--warmup 5] [--iters 20] [--out bench/reports/side_by_side.md] [--json FILE]
A DIR is a model folder (model.onnx [+ test_data_set_0/]) or a folder of them; models without
test_data_set_0 run on each runtime's deterministic random inputs. Needs node and npm: bench/ort's
node_modules is installed on first use (npm ci --ignore-scripts)."""
import argparse
import datetime
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchjson import run_json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ORT_DIR = os.path.join(HERE, "ort")
DEFAULT_MODELS = "/work/shared/models"  # the kiln dev machine's benchmark set; may be absent
GEOMEAN_TARGET, WORST_TARGET, FLOOR_MIN_MS = 0.8, 1.05, 0.001


def ensure_ort(npm):
    """Install onnxruntime-node (its tarball carries the CPU binaries; the install script only
    fetches optional GPU parts, hence --ignore-scripts)."""
    if os.path.isdir(os.path.join(ORT_DIR, "node_modules", "onnxruntime-node")):
        return
    has_lock = os.path.isfile(os.path.join(ORT_DIR, "package-lock.json"))
    cmd = [npm, "ci" if has_lock else "install", "--ignore-scripts", "--no-audit", "--no-fund"]
    print(f"side_by_side: installing ONNX Runtime: {' '.join(cmd)} (in {ORT_DIR})", file=sys.stderr)
    subprocess.run(cmd, cwd=ORT_DIR, check=True, stdout=sys.stderr)


def find_models(spec):
    """(name, model.onnx, test_data_set_0 or None) for every model named by DIR[,DIR...]."""
    found = []
    for d in [x for x in spec.split(",") if x]:
        if os.path.isfile(d) and d.endswith(".onnx"):
            folders = [os.path.dirname(os.path.abspath(d))]
        elif os.path.isfile(os.path.join(d, "model.onnx")):
            folders = [d]
        elif os.path.isdir(d):
            folders = [os.path.join(d, n) for n in sorted(os.listdir(d))
                       if os.path.isfile(os.path.join(d, n, "model.onnx"))]
        else:
            sys.exit(f"side_by_side: {d}: no such model or folder")
        for f in folders:
            data = os.path.join(f, "test_data_set_0")
            name = os.path.basename(os.path.normpath(f))
            if name != "identity":  # the floor probe, not a benchmark
                found.append((name, os.path.join(f, "model.onnx"), data if os.path.isdir(data) else None))
    return found


def commands(args, model, data, threads):
    common = ["--threads", str(threads), "--warmup", str(args.warmup), "--iters", str(args.iters), "--json"]
    inputs = ["--inputs", data] if data else []
    kiln = [args.kiln, "bench", model] + inputs + common
    ort = [args.node, os.path.join(ORT_DIR, "ort_bench.mjs"), model] + inputs + common
    return kiln, ort


# The Identity model (f32[1] -> f32[1], opset 13, IR 8) that make_bench_models.py writes, inlined so
# measuring the floor needs no onnx Python package.
IDENTITY_ONNX = bytes.fromhex(
    "08083a3e0a100a017812017922084964656e7469747912086964656e746974795a0f0a0178120a0a0808011204"
    "0a020801620f0a0179120a0a08080112040a02080142040a00100d")


def measure_floor(args, threads, tmp):
    """Node's per-run cost: ORT's median on an Identity model of one float, the lowest of a few
    processes (load on a shared machine only adds to it, and too high a floor would flatter ORT)."""
    model = os.path.join(tmp, "identity.onnx")
    if not os.path.isfile(model):
        with open(model, "wb") as f:
            f.write(IDENTITY_ONNX)
    cmd = [args.node, os.path.join(ORT_DIR, "ort_bench.mjs"), model,
           "--threads", str(threads), "--warmup", "50", "--iters", "500", "--json"]
    return min(run_json(cmd)["median_ms"] for _ in range(max(3, args.rounds)))


def bench_pair(args, name, model, data, threads, floor):
    """R interleaved rounds of one model at one thread count; a row of the table."""
    kiln_cmd, ort_cmd = commands(args, model, data, threads)
    runs = {"kiln": [], "ort": []}
    row = {"model": name, "threads": threads, "inputs": "test_data_set_0" if data else "random"}
    try:
        for r in range(args.rounds):
            order = [("kiln", kiln_cmd), ("ort", ort_cmd)]
            for side, cmd in (order if r % 2 == 0 else order[::-1]):
                runs[side].append(run_json(cmd))
    except RuntimeError as e:
        row["error"] = f"{side}: {e}"
        print(f"side_by_side: {name} {threads}T: {row['error']}", file=sys.stderr)
        return row
    kiln_ms = statistics.median(x["median_ms"] for x in runs["kiln"])
    ort_raw = statistics.median(x["median_ms"] for x in runs["ort"])
    ort_ms = max(ort_raw - floor, FLOOR_MIN_MS)
    row.update(kiln_ms=kiln_ms, ort_raw_ms=ort_raw, ort_ms=ort_ms, ratio=kiln_ms / ort_ms,
               kiln_rss=max(x.get("peak_rss_bytes", 0) for x in runs["kiln"]),
               ort_rss=max(x.get("peak_rss_bytes", 0) for x in runs["ort"]),
               kiln_compile_ms=statistics.median(x.get("compile_ms", 0.0) for x in runs["kiln"]),
               rounds=runs)
    return row


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def fmt_ms(x):
    """Milliseconds with about 3 significant digits: tiny models run in microseconds."""
    return f"{x:.1f}" if x >= 100 else f"{x:.2f}" if x >= 1 else f"{x:.3f}" if x >= 0.01 else f"{x:.5f}"


def fmt_ratio(x):
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}" if x >= 0.01 else f"{x:.1e}"


def machine():
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        with open("/proc/loadavg") as f:
            load = f"; load average at the start {' '.join(f.read().split()[:3])}"
    except OSError:
        load = ""
    return f"nproc {n}, {cpu_model()}{load}"


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def markdown(args, rows, floors, argv, mach):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    floor_txt = ", ".join(f"{t} thread{'s' if t > 1 else ''}: {f:.4f} ms" for t, f in floors.items())
    out = ["# kiln against ONNX Runtime, side by side", "",
           f"- date: {now}; machine: {mach}",
           f"- command: `{' '.join(shlex.quote(a) for a in argv)}`",
           f"- {args.rounds} rounds per model and thread count, each one `kiln bench` and one ORT process "
           f"({args.warmup} warm-ups, {args.iters} timed runs) in alternating order; each side: the median of "
           "the per-round medians. ONNX Runtime 1.30 (onnxruntime-node, CPU, intra-op N, inter-op 1, "
           "graph optimizations all).",
           f"- Node's per-run floor (Identity model), taken off ORT's figure: {floor_txt}",
           f"- targets: geometric mean of kiln/ORT <= {GEOMEAN_TARGET} per thread count, no model above "
           f"{WORST_TARGET}", "",
           "| model | threads | kiln ms | ORT ms | ratio | kiln RSS MB | ORT RSS MB |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['threads']} | failed: {r['error']} | | | | |")
            continue
        flag = " **!**" if r["ratio"] > WORST_TARGET else ""
        out.append(f"| {r['model']} | {r['threads']} | {fmt_ms(r['kiln_ms'])} | {fmt_ms(r['ort_ms'])} | "
                   f"{fmt_ratio(r['ratio'])}{flag} | {r['kiln_rss'] / 2**20:.1f} | {r['ort_rss'] / 2**20:.1f} |")
    out.append("")
    for t in sorted(floors):
        ok = [r for r in rows if r["threads"] == t and "error" not in r]
        g, worst = geomean([r["ratio"] for r in ok]), max((r["ratio"] for r in ok), default=float("nan"))
        met = "met" if ok and g <= GEOMEAN_TARGET and worst <= WORST_TARGET else "NOT met"
        failed = sum(1 for r in rows if r["threads"] == t and "error" in r)
        out.append(f"- {t} thread{'s' if t > 1 else ''}: geomean ratio {g:.3f}, worst {worst:.2f} over "
                   f"{len(ok)} models{f' ({failed} failed)' if failed else ''}: target {met}")
    out += ["", "ratio < 1: kiln is faster. RSS: peak resident set of the whole process (ORT's includes "
            "Node, about 80 MB). **!** marks a model above the per-model limit."]
    return "\n".join(out) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True, help="the kiln binary (BUILD/kiln)")
    p.add_argument("--models", default=DEFAULT_MODELS, help="DIR[,DIR...] (default %(default)s)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--out", default=os.path.join(HERE, "reports", "side_by_side.md"))
    p.add_argument("--json", help="also write every measurement as JSON to this file")
    p.add_argument("--node", default="node")
    p.add_argument("--npm", default="npm")
    p.add_argument("--floor-ms", type=float, help="use this floor instead of measuring it")
    args = p.parse_args(argv[1:])
    threads = [int(t) for t in args.threads.split(",") if t]
    if not threads or min(threads) < 1 or args.rounds < 1 or args.iters < 1 or args.warmup < 0:
        sys.exit("side_by_side: --threads, --rounds, --iters and --warmup must be positive")
    if not shutil.which(args.kiln) and not os.path.isfile(args.kiln):
        sys.exit(f"side_by_side: {args.kiln}: no such program")
    models = find_models(args.models)
    if not models:
        sys.exit(f"side_by_side: no model.onnx under {args.models}")
    ensure_ort(args.npm)
    rows, floors, mach = [], {}, machine()
    with tempfile.TemporaryDirectory(prefix="kiln-sbs-") as tmp:
        for t in threads:
            floors[t] = args.floor_ms if args.floor_ms is not None else measure_floor(args, t, tmp)
            print(f"side_by_side: Node floor at {t}T: {floors[t]:.4f} ms", file=sys.stderr)
            for name, model, data in models:
                rows.append(bench_pair(args, name, model, data, t, floors[t]))
                r = rows[-1]
                if "error" not in r:
                    print(f"side_by_side: {name:20s} {t}T kiln {fmt_ms(r['kiln_ms']):>9s} ms  ORT {fmt_ms(r['ort_ms']):>9s} ms"
                          f"  ratio {fmt_ratio(r['ratio'])}", file=sys.stderr)
    text = markdown(args, rows, floors, argv, mach)
    sys.stdout.write(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"floors_ms": floors, "rows": rows, "argv": argv}, f, indent=1)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"side_by_side: {e}")
