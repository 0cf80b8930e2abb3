#!/usr/bin/python3
"""check_conformance.py - `kiln check` over every ONNX conformance case, against an
expected-failure list.

Runs `kiln check CASE [-O..] [--threads N]` for each case folder under --cases (node/ and
simple/), each with a time limit, --jobs at a time. A case fails when kiln exits non-zero, dies
from a signal (a crash), runs out of time, or a sanitizer reports an error. One line is printed
per failing case with the first line of kiln's error, then
  conformance: P of T cases pass (N numeric-tensor cases: P2 pass)
where numeric-tensor cases are those whose inputs and outputs are all numeric tensors (no
strings, sequences or optionals; not the ai.onnx.preview.training domain), read from cases.tsv
(--cases-tsv), or from the model itself for cases that file does not list.

--expected FILE lists the cases allowed to fail cleanly ("case_name<TAB>reason" lines, # comments;
a listed case that crashes or times out still fails the test). The
exit status is non-zero when a case fails that is not listed, or a listed case passes (remove
it: the list must stay honest), or a listed case does not exist. --update-expected FILE writes
that list from this run's failures instead, with the first error line as the reason."""
import argparse
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import onnx

import kilntest

# Text a sanitizer prints when it finds a bug; its exit status may still be 0 or 1.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "ERROR: UndefinedBehaviorSanitizer")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kiln", required=True, help="the kiln executable")
    p.add_argument("--cases", required=True, help="generated conformance cases (node/, simple/)")
    p.add_argument("--cases-tsv", help="tests/onnx/cases.tsv (case, op, domain, opset, inputs, "
                   "outputs); default: beside this script's ../onnx/")
    p.add_argument("--expected", help="expected-failure list (case<TAB>reason)")
    p.add_argument("--update-expected", metavar="FILE",
                   help="write the expected-failure list from this run's failures and exit 0")
    p.add_argument("--opt", help="optimization flag passed to kiln, e.g. -O0")
    p.add_argument("--threads", type=int, help="passed to kiln as --threads N")
    p.add_argument("--jobs", type=int, default=2, help="cases run at the same time")
    p.add_argument("--timeout", type=float, default=60, help="seconds per case")
    p.add_argument("--filter", help="only cases whose name matches this regular expression")
    p.add_argument("--work", help="accepted for symmetry with the other checkers; unused")
    args = p.parse_args()
    if args.opt is not None and not re.fullmatch(r"-O[0-3]", args.opt):
        p.error(f"--opt takes -O0..-O3, not {args.opt!r}")
    return args


def find_cases(root):
    """[(name, folder)] for every case under root/node and root/simple."""
    found = []
    for kind in ("node", "simple"):
        folder = os.path.join(root, kind)
        if not os.path.isdir(folder):
            sys.exit(f"no conformance cases in {folder}: run tests/onnx/generate.sh "
                     "(ctest -R onnx_cases_generate)")
        for name in sorted(os.listdir(folder)):
            if os.path.isfile(os.path.join(folder, name, "model.onnx")):
                found.append((name, os.path.join(folder, name)))
    if not found:
        sys.exit(f"no cases under {root}")
    return found


def load_tsv(path):
    """case name -> True when it is a numeric-tensor case, from cases.tsv."""
    numeric = {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        col = {h: i for i, h in enumerate(header)}
        for line in f:
            cells = line.rstrip("\n").split("\t")
            if len(cells) < len(header):
                cells += [""] * (len(header) - len(cells))
            types = cells[col["inputs"]] + "," + cells[col["outputs"]]
            numeric[cells[col["case"]]] = (
                cells[col["domain"]] != "ai.onnx.preview.training"
                and not any(w in types for w in ("string", "seq", "opt")))
    return numeric


def numeric_from_model(folder):
    """Whether the case's model has only numeric-tensor inputs and outputs, and ai.onnx nodes."""
    m = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.WhichOneof("value") != "tensor_type":
            return False
        if v.type.tensor_type.elem_type == onnx.TensorProto.STRING:
            return False
    return all(n.domain in ("", "ai.onnx") for n in m.graph.node)


def load_expected(path):
    """case name -> reason, from an expected-failure list."""
    expected = {}
    if not path:
        return expected
    with open(path) as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, tab, reason = line.partition("\t")
            if not tab or not reason.strip():
                sys.exit(f"{path}:{no}: expected 'case_name<TAB>reason', got {line!r}")
            expected[name.strip()] = reason.strip()
    return expected


def first_error(folder, out, err):
    """The first informative line of a failed `kiln check`, without the case's path."""
    for line in err.splitlines():
        if any(mark in line for mark in SANITIZER_MARKS):
            return line.strip()
    lines = [l.strip() for l in err.splitlines() if l.strip()]
    lines += [l.strip() for l in out.splitlines() if "FAIL" in l and not l.strip().endswith(
        "data sets match)")]
    if not lines:
        lines = [l.strip() for l in out.splitlines() if l.strip()][-1:] or ["(no message)"]
    text = lines[0]
    for prefix in (folder + "/model.onnx: ", folder + ": ", "kiln: "):
        text = text.replace(prefix, "")
    return text.replace(folder, "CASE")


def signal_name(rc):
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


def run_case(item, args):
    """(name, kind, message): kind is pass, fail, crash or timeout."""
    name, folder = item
    argv = [args.kiln, "check", folder]
    if args.opt:
        argv.append(args.opt)
    if args.threads:
        argv += ["--threads", str(args.threads)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace",
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: kiln and nothing else
        proc.communicate()
        return name, "timeout", f"timed out after {args.timeout:g} s"
    rc = proc.returncode
    if rc < 0:
        return name, "crash", f"crashed ({signal_name(rc)}): {first_error(folder, out, err)}"
    if any(mark in err for mark in SANITIZER_MARKS):
        return name, "crash", f"sanitizer: {first_error(folder, out, err)}"
    if rc != 0:
        return name, "fail", first_error(folder, out, err)
    return name, "pass", ""


def write_expected(path, results):
    failing = sorted((n, msg) for n, kind, msg in results if kind != "pass")
    with open(path, "w") as f:
        f.write("# codegen_expected_fail.txt - conformance cases `kiln check` is allowed to fail\n"
                "# (tests/tools/check_conformance.py): case_name<TAB>reason. A listed case that\n"
                "# passes fails the test, so remove a line as soon as its case works.\n")
        for name, msg in failing:
            f.write(f"{name}\t{' '.join(msg.split())}\n")
    print(f"wrote {len(failing)} expected failures to {path}")


def main():
    sys.argv[1:] = kilntest.glue_option_values(sys.argv[1:], ("--opt",))
    args = parse_args()
    tsv = args.cases_tsv or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "..", "onnx", "cases.tsv")
    numeric = load_tsv(tsv)
    expected = load_expected(args.expected)
    cases = find_cases(args.cases)
    if args.filter:
        cases = [c for c in cases if re.search(args.filter, c[0])]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda c: run_case(c, args), cases))
    is_numeric = {n: numeric[n] if n in numeric else numeric_from_model(f) for n, f in cases}

    bad = []
    for name, kind, msg in results:
        if kind == "pass":
            continue
        tag = {"fail": "FAIL", "crash": "CRASH", "timeout": "TIMEOUT"}[kind]
        if name in expected and kind == "fail" and not args.update_expected:
            tag = "xfail " + tag  # a crash or a timeout is never an expected failure
        else:
            bad.append(name)
        print(f"{tag} {name}: {msg}")
    names = {n for n, _ in cases}
    # A random op's few output bits can match numpy's draw by chance (test_bernoulli: 10 coin
    # flips); its entry stays, so only cases whose reason is not "random: ..." must keep failing.
    now_pass = [n for n, kind, _ in results
                if kind == "pass" and n in expected and not expected[n].startswith("random:")]
    missing = [] if args.filter else sorted(set(expected) - names)

    total = len(results)
    passed = sum(kind == "pass" for _, kind, _ in results)
    n_numeric = sum(is_numeric[n] for n, _, _ in results)
    numeric_pass = sum(is_numeric[n] and kind == "pass" for n, kind, _ in results)
    crashes = sum(kind == "crash" for _, kind, _ in results)
    timeouts = sum(kind == "timeout" for _, kind, _ in results)
    if crashes or timeouts:
        print(f"({crashes} crashed, {timeouts} timed out)")
    print(f"conformance: {passed} of {total} cases pass "
          f"({n_numeric} numeric-tensor cases: {numeric_pass} pass)")

    if args.update_expected:
        write_expected(args.update_expected, results)
        return 0
    for n in sorted(now_pass):
        print(f"PASSES NOW {n}: remove it from {args.expected}")
    for n in missing:
        print(f"NO SUCH CASE {n}: remove it from {args.expected}")
    if bad:
        print(f"{len(bad)} failing cases are not in the expected-failure list"
              + (f" {args.expected}" if args.expected else ""))
    return 1 if bad or now_pass or missing else 0


if __name__ == "__main__":
    sys.exit(main())
