#!/usr/bin/env python3
"""check_io_faults.py - kiln on I/O faults: each must end with exit 1, one clear message naming the
file, no crash, and no partial or temporary output left behind.

- external data that cannot be read: a directory, a FIFO, a path through a regular file, a file
  truncated short of the tensor, a file without read permission (only when not root: root reads
  anyway), and a file deleted after the model was written;
- files that are FIFOs nobody writes to (a .onnx or .kir model, a .kir's safetensors, a .pb or .npy
  input, an AOT program's input and weights file): refused, never waited on;
- a full disk on output: `kiln run --output-dir`, `kiln export` (.kir and .onnx) and `kiln compile`
  with RLIMIT_FSIZE small (writes fail with EFBIG; SIGXFSZ ignored), and, when this user may mount
  one, on a 64 KiB tmpfs (writes fail with ENOSPC).
"""
import argparse, os, resource, shutil, signal, stat, subprocess, sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TIMEOUT = 60


def make_external_model(d):
    """An MLP-like model whose weight (64 KiB) lives in weights.bin beside model.onnx."""
    w = numpy_helper.from_array(np.arange(128 * 128, dtype=np.float32).reshape(128, 128) / 1e4, "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", str(128 * 128 * 4))):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "ext",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])], [w])
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    data = (np.arange(128 * 128, dtype=np.float32) / 1e4).tobytes()
    return path, data


def run(cmd, limit_fsize=None):
    def pre():
        if limit_fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_fsize, limit_fsize))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=pre)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, -999, "", f"timed out after {TIMEOUT} s")


class Checker:
    def __init__(self):
        self.passed = self.failed = 0

    def expect_error(self, name, res, must_name, out_dir=None, before=None):
        """exit 1, one message naming must_name, and no files in out_dir beyond `before`."""
        problems = []
        if res.returncode != 1:
            problems.append(f"exit {res.returncode} (want 1)")
        msg = res.stderr.strip()
        if not msg:
            problems.append("no message")
        elif must_name and must_name not in msg:
            problems.append(f"message does not name {must_name!r}")
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation", "Aborted"):
            if bad in res.stderr:
                problems.append(f"stderr shows {bad}")
        if out_dir is not None:
            left = sorted(set(os.listdir(out_dir)) - set(before or []))
            if left:
                problems.append(f"left behind: {left}")
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {'; '.join(problems)}\n    stderr: {msg[:600]}")
        else:
            self.passed += 1
            print(f"ok   {name}: {msg.splitlines()[-1] if msg else ''}")


def external_data_cases(kiln, work, ck):
    """Every broken external data file, through `kiln inspect` and `kiln run`."""
    cases = {
        "a directory": lambda p, data: os.mkdir(p),
        "a FIFO": lambda p, data: os.mkfifo(p),
        "truncated": lambda p, data: open(p, "wb").write(data[:1000]),
        "deleted after writing": lambda p, data: (open(p, "wb").write(data), os.unlink(p)),
    }
    if os.geteuid() != 0:
        cases["unreadable (mode 000)"] = lambda p, data: (open(p, "wb").write(data), os.chmod(p, 0))
    for i, (what, make) in enumerate(cases.items()):
        d = os.path.join(work, f"ext{i}")
        model, data = make_external_model(d)
        make(os.path.join(d, "weights.bin"), data)
        out = os.path.join(d, "out")
        os.mkdir(out)
        ck.expect_error(f"external data {what}: inspect", run([kiln, "inspect", model]), "weights.bin")
        ck.expect_error(f"external data {what}: run",
                        run([kiln, "run", model, "-O0", "--output-dir", out]), "weights.bin", out, [])
    # A location through a regular file ("blob/weights.bin" where blob is a file).
    d = os.path.join(work, "ext_notdir")
    model, data = make_external_model(d)
    open(os.path.join(d, "blob"), "wb").write(data)
    m = onnx.load(model, load_external_data=False)
    m.graph.initializer[0].external_data[0].value = "blob/weights.bin"
    onnx.save(m, model)
    ck.expect_error("external data path through a file: inspect", run([kiln, "inspect", model]), "blob/weights.bin")


def fifo_cases(kiln, models, work, ck, aot=True):
    """A FIFO with no writer blocks a plain open() forever: each must be refused at once."""
    d = os.path.join(work, "fifo")
    os.makedirs(d)
    mlp = os.path.join(models, "mlp", "model.onnx")
    good_input = os.path.join(models, "mlp", "test_data_set_0", "input_0.pb")
    for name in ("model.onnx", "model.kir", "input.pb", "input.npy", "weights.bin"):
        os.mkfifo(os.path.join(d, name))
    ck.expect_error("FIFO .onnx model: inspect", run([kiln, "inspect", os.path.join(d, "model.onnx")]), "model.onnx")
    ck.expect_error("FIFO .kir model: inspect", run([kiln, "inspect", os.path.join(d, "model.kir")]), "model.kir")
    for ext in ("pb", "npy"):
        ck.expect_error(f"FIFO .{ext} input: run",
                        run([kiln, "run", mlp, "-O0", "--input", f"input={os.path.join(d, 'input.' + ext)}"]),
                        f"input.{ext}")
    # a .kir whose weights file is a FIFO
    kd = os.path.join(work, "fifo_kir")
    os.makedirs(kd)
    res = run([kiln, "export", mlp, "-o", os.path.join(kd, "m.kir")])
    weights = [f for f in os.listdir(kd) if f.endswith(".safetensors")]
    if res.returncode != 0 or len(weights) != 1:
        ck.failed += 1
        print(f"FAIL FIFO safetensors: could not export mlp to .kir: {res.stderr.strip()[:300]}")
    else:
        os.unlink(os.path.join(kd, weights[0]))
        os.mkfifo(os.path.join(kd, weights[0]))
        ck.expect_error("FIFO .kir weights: inspect", run([kiln, "inspect", os.path.join(kd, "m.kir")]), weights[0])
    if not aot:
        print("skip FIFO AOT cases: a sanitized libkiln_rt cannot be linked into a plain program")
        return
    # an AOT program (libkiln_rt's own readers)
    exe, wts = os.path.join(d, "mlp_exe"), os.path.join(d, "mlp.weights")
    res = run([kiln, "compile", mlp, "-O0", "--exe", "-o", exe, "--weights", wts])
    if res.returncode != 0:
        ck.failed += 1
        print(f"FAIL FIFO AOT: kiln compile --exe failed: {res.stderr.strip()[:300]}")
        return
    ck.expect_error("FIFO input: AOT program",
                    run([exe, "--input", f"input={os.path.join(d, 'input.pb')}", "--weights", wts]), "input.pb")
    ck.expect_error("FIFO weights: AOT program",
                    run([exe, "--input", f"input={good_input}", "--weights", os.path.join(d, "weights.bin")]),
                    "weights.bin")


def full_disk_cases(kiln, models, out, label, ck, limit=None):
    """Writes that cannot complete into out (a folder on a full disk, or with limit: RLIMIT_FSIZE)."""
    model = os.path.join(models, "mnist_cnn", "model.onnx")
    inputs = os.path.join(models, "mnist_cnn", "test_data_set_0")
    big = os.path.join(models, "transformer_small", "model.onnx")
    cmds = [
        ("run --output-dir", [kiln, "run", model, "-O0", "--inputs", inputs, "--output-dir",
                              os.path.join(out, "outputs"), "--npy"], os.path.join(out, "outputs")),
        ("export .kir", [kiln, "export", big, "-o", os.path.join(out, "m.kir")], "m.kir"),
        ("export .onnx", [kiln, "export", big, "-o", os.path.join(out, "m.onnx")], "m.onnx"),
        ("export .onnx --external-data",
         [kiln, "export", big, "-o", os.path.join(out, "e.onnx"), "--external-data"], "e.onnx"),
        ("compile .o", [kiln, "compile", model, "-O0", "-o", os.path.join(out, "m.o")], "m.o"),
    ]
    for what, cmd, must_name in cmds:
        before = os.listdir(out)
        res = run(cmd, limit)
        if what == "run --output-dir" and os.path.isdir(os.path.join(out, "outputs")):
            # the folder itself may be created; what it must not hold is a partial output
            left = os.listdir(os.path.join(out, "outputs"))
            if not left:
                os.rmdir(os.path.join(out, "outputs"))
        ck.expect_error(f"{label}: {what}", res, os.path.basename(must_name), out, before)


def try_tmpfs(d):
    os.makedirs(d, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", required=True, help="the bundled models (mnist_cnn, transformer_small)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--no-aot", action="store_true", help="skip the AOT program cases (sanitized builds)")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    ck = Checker()
    external_data_cases(args.kiln, args.work, ck)
    fifo_cases(args.kiln, args.models, args.work, ck, aot=not args.no_aot)

    out = os.path.join(args.work, "fsize")
    os.mkdir(out)
    full_disk_cases(args.kiln, args.models, out, "RLIMIT_FSIZE 16 bytes", ck, limit=16)

    tmp = os.path.join(args.work, "tmpfs")
    if os.geteuid() == 0 and shutil.which("mount") and try_tmpfs(tmp):
        try:
            # fill it to the last block so every write fails with ENOSPC
            fd = os.open(os.path.join(tmp, "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                while os.write(fd, b"\0" * 512) > 0:
                    pass
            except OSError:
                pass
            os.close(fd)
            full_disk_cases(args.kiln, args.models, tmp, "full tmpfs", ck)
        finally:
            subprocess.run(["umount", tmp])
    else:
        print("skip full tmpfs: cannot mount one here (RLIMIT_FSIZE covers full disks)")
    print(f"{ck.passed} passed, {ck.failed} failed")
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
