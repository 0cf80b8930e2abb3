#!/bin/bash
# run_fuzz.sh - what the ctest fuzz tests run (tests/fuzz/CMakeLists.txt):
#   run_fuzz.sh BIN CORPUS WORK SECONDS   fuzz BIN for SECONDS (env KILN_FUZZ_SECONDS overrides)
#                                         from a fresh copy of CORPUS in WORK; crashes go to WORK/
#   run_fuzz.sh --replay BIN DIR          run every file of DIR through libFuzzer target BIN once
#   run_fuzz.sh --replay-all SRC BIN...   plain builds: each fuzz_replay_T over SRC/regressions/T
#                                         and SRC/corpus/T
set -euo pipefail

if [ "$1" = --replay ]; then
  bin=$2 dir=$3
  files=("$dir"/*)
  [ -e "${files[0]}" ] || { echo "no inputs in $dir"; exit 0; }
  exec "$bin" -rss_limit_mb=2048 -timeout=60 "${files[@]}"
fi

if [ "$1" = --replay-all ]; then
  src=$2
  shift 2
  start=$SECONDS
  for bin in "$@"; do
    t=$(basename "$bin")
    t=${t#fuzz_replay_}
    dirs=()
    for d in "$src/regressions/$t" "$src/corpus/$t"; do [ -d "$d" ] && dirs+=("$d"); done
    [ ${#dirs[@]} -eq 0 ] || "$bin" "${dirs[@]}"
  done
  echo "replay wall time: $((SECONDS - start)) s"
  exit 0
fi

bin=$1 corpus=$2 work=$3 seconds=${KILN_FUZZ_SECONDS:-$4}
rm -rf "$work"
mkdir -p "$work/corpus"
cp -r "$corpus"/. "$work/corpus/"
dict=()
name=$(basename "$bin")
if [ -f "$(dirname "$0")/dict/${name#fuzz_}.dict" ]; then
  dict=(-dict="$(dirname "$0")/dict/${name#fuzz_}.dict")
fi
start=$SECONDS
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
  -artifact_prefix="$work/" "${dict[@]}" "$work/corpus"
echo "fuzz wall time: $((SECONDS - start)) s (crash inputs, if any, are in $work/)"
