#!/usr/bin/python3
"""check_bad_input.py --kiln KILN --cases OUTDIR - runs kiln on the files make_bad_models.py
wrote into OUTDIR (see its cases.json).

Hostile file F: `kiln inspect F` exits exactly 1 (no signal, no 0) with exactly one stderr line,
"kiln: ...", naming F and holding the case's expected words; `kiln export F -o out.onnx` exits 1
and leaves nothing behind in its output folder. Control files: both commands succeed.
With KILN_VALGRIND=1 and valgrind installed, each run of every KILN_VALGRIND_EVERY-th case (default
every case) happens under valgrind too, and any memory error or definite/indirect leak fails it."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import kilntest as kt  # noqa: E402

VALGRIND_ERROR = 99
VALGRIND = ["valgrind", "-q", f"--error-exitcode={VALGRIND_ERROR}", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--show-leak-kinds=definite,indirect"]


def run(cmd, cwd, timeout=120):
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace",
                           timeout=timeout, stdin=subprocess.DEVNULL)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s"


def describe_rc(rc):
    if rc is None:
        return "hung (timed out)"
    return f"was killed by signal {-rc}" if rc < 0 else f"exited {rc}"


def sanitizer_report(stderr):
    """The first line of an ASan/LSan/UBSan report in stderr, or None. (ASan exits 1 too, the
    code a hostile file must give, so its report is looked for in the text.)"""
    for line in stderr.splitlines():
        if "Sanitizer" in line or "runtime error:" in line:
            return line.strip()
    return None


def words_missing(message, words):
    """Entries of words (each "a|b|...") that message does not satisfy, case-insensitively."""
    low = message.lower()
    return [w for w in words if not any(alt.lower() in low for alt in w.split("|"))]


def check_message(case, stderr, fails):
    lines = stderr.splitlines()
    if len(lines) != 1:
        fails.append(f"inspect wrote {len(lines)} stderr lines, expected 1: {stderr.strip()[:400]!r}")
        return
    line, rel = lines[0], case["file"]
    if not line.startswith("kiln: "):
        fails.append(f"stderr does not start with 'kiln: ': {line[:300]!r}")
    if os.path.basename(rel) not in line:
        fails.append(f"message does not name the file {os.path.basename(rel)}: {line[:300]!r}")
    missing = words_missing(line.replace(rel, ""), case["expect"])
    if missing:
        fails.append(f"message lacks {missing}: {line[:300]!r}")


def check_hostile(case, kiln, root, prefix, fails):
    rc, _, err = run([*prefix, kiln, "inspect", case["file"]], root)
    if sanitizer_report(err):
        fails.append(f"inspect: {sanitizer_report(err)}")
    elif rc == VALGRIND_ERROR and prefix:
        fails.append(f"valgrind: inspect has memory errors or leaks: {err.strip()[-1500:]}")
    elif rc != 1:
        fails.append(f"inspect {describe_rc(rc)}, expected exit 1: {err.strip()[:400]!r}")
    elif not prefix:
        check_message(case, err, fails)
    out_dir = tempfile.mkdtemp(dir=root)
    try:
        rc, _, err = run([*prefix, kiln, "export", case["file"], "-o",
                          os.path.join(out_dir, "out.onnx")], root)
        if sanitizer_report(err):
            fails.append(f"export: {sanitizer_report(err)}")
        elif rc == VALGRIND_ERROR and prefix:
            fails.append(f"valgrind: export has memory errors or leaks: {err.strip()[-1500:]}")
        elif rc != 1:
            fails.append(f"export {describe_rc(rc)}, expected exit 1: {err.strip()[:400]!r}")
        left = os.listdir(out_dir)
        if left:
            fails.append(f"export left files behind after failing: {left}")
    finally:
        shutil.rmtree(out_dir)


def check_control(case, kiln, root, prefix, fails):
    rc, _, err = run([*prefix, kiln, "inspect", case["file"]], root)
    if rc != 0:
        fails.append(f"control file: inspect {describe_rc(rc)}, expected 0: {err.strip()[:400]!r}")
    out_dir = tempfile.mkdtemp(dir=root)
    try:
        out = os.path.join(out_dir, "out.onnx")
        rc, _, err = run([*prefix, kiln, "export", case["file"], "-o", out], root)
        if rc != 0 or not os.path.isfile(out):
            fails.append(f"control file: export {describe_rc(rc)}, expected 0: {err.strip()[:400]!r}")
    finally:
        shutil.rmtree(out_dir)


def check(item):
    case, kiln, root, use_valgrind = item
    fails = []
    runs = [[]] + ([VALGRIND] if use_valgrind else [])
    for prefix in runs:
        (check_control if case["ok"] else check_hostile)(case, kiln, root, prefix, fails)
    label = f"{case['name']}{' (control)' if case['ok'] else ''}"
    return label, fails


def main():
    p = kt.arg_parser(__doc__)
    args = p.parse_args()
    root = os.path.abspath(args.cases)
    with open(os.path.join(root, "cases.json")) as f:
        cases = json.load(f)
    use_valgrind = os.environ.get("KILN_VALGRIND") == "1" and shutil.which("valgrind") is not None
    # Each valgrind run of kiln costs seconds (libLLVM's start-up under valgrind): KILN_VALGRIND_EVERY=N
    # takes every Nth case under valgrind (the sanitizer build checks every case for leaks anyway).
    every = max(1, int(os.environ.get("KILN_VALGRIND_EVERY", "1")))
    print(f"{len(cases)} cases" + (f", every {every} also under valgrind" if use_valgrind else ""))
    kiln = os.path.abspath(args.kiln)
    items = [(case, kiln, root, use_valgrind and i % every == 0) for i, case in enumerate(cases)]
    return kt.report(kt.parallel_map(check, items, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
