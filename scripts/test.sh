#!/usr/bin/env bash
# test.sh - installs what is missing, builds with warnings as errors (build-test/, RelWithDebInfo,
# IR verifier after every pass) and runs every test; then, unless SKIP_SANITIZE=1, builds again
# with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs the suite again.
# Before the tests, clang-19 builds everything with warnings as errors too (build-clang/, no tests
# run there: it guards the "gcc and clang both build it clean" promise).
# Extra arguments go to ctest (e.g. -R kir_roundtrip). Exits non-zero on any failure.
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
echo "== clang-19 warnings build (build-clang)"
CC=clang-19 cmake -S "$root" -B "$root/build-clang" -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON >/dev/null
cmake --build "$root/build-clang" -j"$jobs" -- --no-print-directory >/dev/null

# valgrind guards the hostile-input tests where no sanitizer does (every third case: the
# sanitizer build checks them all for leaks).
KILN_VALGRIND=1 KILN_VALGRIND_EVERY=3 build_and_test "$root/build-test" -DKILN_SANITIZE=OFF

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  KILN_VALGRIND=0 build_and_test "$root/build-asan" -DKILN_SANITIZE=ON
fi
