#!/usr/bin/env bash
# generate.sh - writes ONNX's own backend conformance cases (from Debian's python3-onnx, onnx 1.12)
# into OUT: OUT/node/test_<name>/ and OUT/simple/test_<name>/, each a model.onnx and
# test_data_set_0/{input_K.pb,output_K.pb} (TensorProto; SequenceProto/OptionalProto for the few
# non-tensor cases). Deterministic, about 30 s. OUT/.complete marks a finished run, so a second
# call returns at once. cases.tsv beside this script lists the node cases it must produce.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: generate.sh OUTDIR}
py=/usr/bin/python3 # Debian's python: python3-onnx installs for it, not for other pythons on PATH
[ -f "$out/.complete" ] && { echo "already generated: $out"; exit 0; }
if ! "$py" -c 'import onnx, numpy' 2>/dev/null; then
  echo "generate.sh: $py cannot import onnx and numpy; run scripts/deps.sh (apt: python3-onnx python3-numpy)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$(dirname "$out")/.onnx-tests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" - "$tmp" <<'PY'
import sys, numpy as np
# onnx 1.12's case generators still use aliases that numpy 1.24 removed
for k, v in {"float": float, "int": int, "bool": bool, "object": object}.items():
    if k not in np.__dict__: setattr(np, k, v)
np.random.seed(0)
from onnx.backend.test.cmd_tools import main
sys.argv = ["cmd_tools", "generate-data", "-o", sys.argv[1]]
main()
PY
# Every case cases.tsv names must be there: a silently smaller set would pass more tests.
missing=0
while IFS=$'\t' read -r name _; do
  [ "$name" = case ] && continue
  [ -f "$tmp/node/$name/model.onnx" ] || { echo "generate.sh: missing case $name" >&2; missing=$((missing + 1)); }
done < "$here/cases.tsv"
[ "$missing" -eq 0 ] || { echo "generate.sh: $missing cases of cases.tsv were not generated" >&2; exit 1; }
mkdir -p "$out"; rm -rf "$out/node" "$out/simple"
mv "$tmp/node" "$tmp/simple" "$out/"; touch "$out/.complete"
count() { find "$1" -mindepth 1 -maxdepth 1 -type d | wc -l; }
echo "generated $(count "$out/node") node cases and $(count "$out/simple") simple cases in $out"
