#!/usr/bin/python3
"""check_kill.py - `kiln run`, `kiln compile` and `kiln export` killed (SIGKILL) at random moments
never leave a truncated output: after each kill, every output path either does not exist or holds
exactly the bytes a complete run writes. Also: a run whose output cannot be written (a folder
where the file should go) fails with exit 1 and leaves none of its outputs.
Usage: check_kill.py --kiln KILN --model MODEL_DIR [--trials N]"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

failures = []


def commands(kiln, model, data, out):
    """(label, argv, output paths) for each command that writes files."""
    return [
        ("run", [kiln, "run", model, "--inputs", data, "--output-dir", out, "--npy"],
         [os.path.join(out, "output_0.pb"), os.path.join(out, "output_0.npy")]),
        ("compile .o", [kiln, "compile", model, "-o", os.path.join(out, "m.o"), "--weights", os.path.join(out, "m.weights")],
         [os.path.join(out, f) for f in ("m.o", "m.h", "m.weights")]),
        ("compile --exe", [kiln, "compile", model, "--exe", "-o", os.path.join(out, "prog")], [os.path.join(out, "prog")]),
        ("export .kir", [kiln, "export", model, "-o", os.path.join(out, "m.kir")],
         [os.path.join(out, "m.kir"), os.path.join(out, "m.safetensors")]),
        ("export .onnx", [kiln, "export", model, "-o", os.path.join(out, "m.onnx")], [os.path.join(out, "m.onnx")]),
    ]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def reference(label, argv, paths):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True)
    took = time.perf_counter() - t0
    if p.returncode != 0:
        failures.append("%s: complete run failed: %s" % (label, p.stderr.decode()[-400:]))
        return None, took
    return {path: read(path) for path in paths if os.path.exists(path)}, took


def trial(label, argv, paths, ref, delay):
    for path in paths:
        if os.path.exists(path):
            os.remove(path)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    for path in paths:
        # The header of `compile` names no digest, so every path has one right content.
        if os.path.exists(path) and read(path) != ref.get(path):
            failures.append("%s killed after %.3f s: %s is not what a complete run writes (%d bytes)"
                            % (label, delay, os.path.basename(path), os.path.getsize(path)))


def unwritable(kiln, model, data, work):
    """A folder stands where output_0.npy must go: the run fails and leaves no output_0.pb."""
    out = os.path.join(work, "blocked")
    os.makedirs(os.path.join(out, "output_0.npy"))
    p = subprocess.run([kiln, "run", model, "--inputs", data, "--output-dir", out, "--npy"], capture_output=True, text=True)
    lines = p.stderr.strip().splitlines()
    if p.returncode != 1 or len(lines) != 1 or "output_0.npy" not in p.stderr:
        failures.append("run with an unwritable output: exit %d, stderr %r" % (p.returncode, p.stderr))
    if os.path.exists(os.path.join(out, "output_0.pb")):
        failures.append("run with an unwritable output_0.npy left output_0.pb behind")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", required=True, help="folder with model.onnx and test_data_set_0")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="kiln-kill-")
    model, data = os.path.join(args.model, "model.onnx"), os.path.join(args.model, "test_data_set_0")
    kills = 0
    try:
        out = os.path.join(work, "out")
        os.makedirs(out)
        for label, argv, paths in commands(args.kiln, model, data, out):
            ref, took = reference(label, argv, paths)
            if ref is None:
                continue
            for _ in range(args.trials):
                trial(label, argv, paths, ref, rng.uniform(0, took * 1.1))
                kills += 1
        unwritable(args.kiln, model, data, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("%d kills, %d failures" % (kills, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
