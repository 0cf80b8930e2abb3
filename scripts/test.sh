#!/usr/bin/env bash
# test.sh - installs what is missing, then builds and tests kiln four ways:
#   build-fuzz   clang-19, warnings as errors, libFuzzer + ASan/UBSan instrumentation: the fuzz
#                targets, each fuzzed briefly from its seed corpus, and their regression inputs;
#   build-test   gcc, warnings as errors, RelWithDebInfo, IR verifier after every pass: every test;
#   build-asan   gcc with AddressSanitizer + UndefinedBehaviorSanitizer: the suite again;
#   build-tsan   gcc with ThreadSanitizer: the concurrency tests.
# SKIP_SANITIZE=1 skips the last two. Extra arguments go to ctest (e.g. -R kir_roundtrip).
# Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
kiln_install_deps
jobs=2

build_and_test() { # DIR [cmake options...]
  local dir=$1; shift
  echo "== configure + build $dir"
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON \
        -DKILN_VERIFY_PASSES=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" -- --no-print-directory
  echo "== ctest $dir"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" "${ctest_args[@]}")
}

ctest_args=("$@")
# clang builds everything clean too, instrumented for fuzzing; only the fuzz tests run there.
echo "== configure + build $root/build-fuzz (clang-19, libFuzzer)"
CC=clang-19 cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON \
      -DKILN_FUZZ=ON >/dev/null
cmake --build "$root/build-fuzz" -j"$jobs" -- --no-print-directory >/dev/null
echo "== ctest $root/build-fuzz (fuzz targets)"
(cd "$root/build-fuzz" && KILN_FUZZ_SECONDS=10 ctest --output-on-failure -j"$jobs" -L fuzz "${ctest_args[@]}")

# valgrind guards the hostile-input tests where no sanitizer does (every third case: the
# sanitizer build checks them all for leaks).
KILN_VALGRIND=1 KILN_VALGRIND_EVERY=3 build_and_test "$root/build-test" -DKILN_SANITIZE=OFF

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  KILN_VALGRIND=0 build_and_test "$root/build-asan" -DKILN_SANITIZE=ON
  unset ASAN_OPTIONS UBSAN_OPTIONS
  # ThreadSanitizer: only what the concurrency tests need is built.
  echo "== configure + build $root/build-tsan (ThreadSanitizer)"
  cmake -S "$root" -B "$root/build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_WERROR=ON \
        -DKILN_TSAN=ON >/dev/null
  cmake --build "$root/build-tsan" -j"$jobs" --target test_concurrency kiln -- --no-print-directory
  echo "== ctest $root/build-tsan (concurrency)"
  (cd "$root/build-tsan" && ctest --output-on-failure -R concurrency "${ctest_args[@]}")
fi
