"""benchjson.py - shared by the bench scripts: run a benchmark program and take the JSON object it
printed (kiln bench --json, ort_bench.mjs --json, fma_peak --json, ...)."""
import json
import subprocess


def parse_json_output(text):
    """The JSON object a benchmark printed: all of stdout, or the last object in it (a program may
    print progress lines first; kiln pretty-prints over several lines)."""
    dec = json.JSONDecoder()
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("{")]
    for i in reversed(starts):
        try:
            obj, _ = dec.raw_decode("".join(lines[i:]).strip())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def run_json(cmd):
    """Runs one benchmark process; returns its JSON object, or raises RuntimeError saying why not."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:  # the program is missing or not executable
        raise RuntimeError(f"{cmd[0]}: {e.strerror}") from e
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RuntimeError(f"{cmd[0]}: exit {p.returncode}: {err}")
    obj = parse_json_output(p.stdout)
    if obj is None:
        raise RuntimeError(f"{cmd[0]}: no JSON object on stdout")
    return obj
