#!/usr/bin/python3
"""aot_startup.py - start-up of an ahead-of-time build against the JIT, per model: wall time of
`PROG --inputs DIR` (a `kiln compile --exe` program: load + create + first run) against
`kiln run MODEL --inputs DIR` (load + specialize + compile + JIT + first run), interleaved A/B, the
median of --reps runs each. Writes a markdown table (stdout, and --out FILE).
Usage: aot_startup.py --kiln build/kiln --models ../shared/models [--reps 5] [--out FILE]"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def wall(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--models", action="append", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out")
    args = p.parse_args()
    rows = ["| model | JIT: kiln run (ms) | AOT: program (ms) | speed-up | program size |", "|---|---|---|---|---|"]
    work = tempfile.mkdtemp(prefix="kiln-startup-")
    for folder in args.models:
        for name in sorted(os.listdir(folder)):
            model, data = os.path.join(folder, name, "model.onnx"), os.path.join(folder, name, "test_data_set_0")
            if not os.path.isfile(model):
                continue
            prog = os.path.join(work, name)
            subprocess.run([args.kiln, "compile", model, "--exe", "-o", prog], check=True, stdout=subprocess.DEVNULL)
            jit, aot = [], []
            for _ in range(args.reps):
                jit.append(wall([args.kiln, "run", model, "--inputs", data]))
                aot.append(wall([prog, "--inputs", data]))
            j, a = statistics.median(jit), statistics.median(aot)
            rows.append("| %s | %.1f | %.1f | %.0fx | %.1f MB |" % (name, j, a, j / a, os.path.getsize(prog) / 1e6))
            print(rows[-1], file=sys.stderr, flush=True)
    head = ("# AOT start-up against the JIT\n\nWall time of a whole process, median of %d interleaved runs each, %s, "
            "1 thread: `kiln run MODEL --inputs DIR` (load, specialize, compile, JIT, first run) against the "
            "`kiln compile --exe` program (load, create, first run). Written by bench/aot_startup.py.\n\n"
            % (args.reps, time.strftime("%Y-%m-%d")))
    text = head + "\n".join(rows) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
