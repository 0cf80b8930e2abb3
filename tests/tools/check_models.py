#!/usr/bin/python3
"""check_models.py - `kiln check` on whole models against the outputs their exporter (torch)
stored in MODEL/test_data_set_0, at several optimization levels and thread counts.

For every MODEL/model.onnx under --models, runs
  kiln check MODEL --rtol R --atol A -O<o> --threads <t>
for each combination given by --combo (default: -O0 and -O3, each with 1 and 2 threads). Fails
on any mismatch, error, crash or time-out; a model kiln cannot compile yet fails too (a model
is a promise the README makes). --require-models exits 77 (skipped) when no folder exists."""
import argparse
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import kilntest

SKIP = 77
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True)
    p.add_argument("--models", action="append", default=[], help="folder of MODEL/model.onnx")
    p.add_argument("--skip-models", action="append", default=[], help="model names to leave out")
    p.add_argument("--require-models", action="store_true")
    p.add_argument("--combo", action="append", default=[],
                   help="'OPT,THREADS' such as '-O0,2'; repeatable")
    p.add_argument("--rtol", default="1e-3")
    p.add_argument("--atol", default="1e-4")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600, help="seconds per kiln check")
    args = p.parse_args(kilntest.glue_option_values(sys.argv[1:], ("--combo",)))
    combos = args.combo or ["-O0,1", "-O0,2", "-O3,1", "-O3,2"]
    args.combos = [tuple(c.split(",")) for c in combos]
    return args


def find_models(folders, skip):
    found = []
    for folder in folders:
        if os.path.isdir(folder):
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if name not in skip and os.path.isfile(os.path.join(path, "model.onnx")):
                    found.append((name, path))
    return found


def run(item, args):
    (name, path), (opt, threads) = item
    argv = [args.kiln, "check", path, "--rtol", args.rtol, "--atol", args.atol, opt,
            "--threads", threads]
    label = f"{name} {opt} --threads {threads}"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return label, f"timed out after {args.timeout:g} s"
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    lines += [l.strip() for l in out.splitlines() if "FAIL" in l]
    first = lines[0] if lines else "(no message)"
    if proc.returncode < 0:
        return label, f"crashed (signal {-proc.returncode}): {first}"
    for mark in SANITIZER_MARKS:
        if mark in err:
            return label, next(l for l in err.splitlines() if mark in l)
    if proc.returncode != 0:
        return label, first
    return label, None


def main():
    args = parse_args()
    if args.require_models and not any(os.path.isdir(f) for f in args.models):
        print(f"SKIP: model folder {', '.join(args.models) or '(none)'} is absent "
              "(set -DKILN_MODELS_DIR=... to run these tests)")
        return SKIP
    models = find_models(args.models, set(args.skip_models))
    if not models:
        sys.exit("no models found")
    items = [(m, c) for m in models for c in args.combos]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda it: run(it, args), items))
    failed = 0
    for label, msg in results:
        print(f"{'FAIL' if msg else 'ok  '} {label}{': ' + msg if msg else ''}")
        failed += msg is not None
    print(f"models: {len(results) - failed} of {len(results)} checks pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
