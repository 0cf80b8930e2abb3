#!/usr/bin/env bash
# deps.sh - installs kiln's build and test dependencies on Debian 12, only those missing.
# Sourced by run-default.sh and test.sh; runnable alone. apt runs only when something is missing,
# so a re-run does no package work at all.
set -euo pipefail

KILN_DEPS=(
  build-essential cmake pkg-config          # compiler and build system
  llvm-19-dev clang-19                      # code generation (LLVM C API)
  zlib1g-dev libzstd-dev                    # what LLVM's static libraries need (the kiln binary links them)
  libomp-19-dev                             # OpenMP for the clang build (gcc uses libgomp)
  libclang-rt-19-dev                        # clang's libFuzzer and sanitizer runtimes (tests/fuzz)
  libprotobuf-c-dev protobuf-c-compiler     # ONNX protobuf, C code generated at build time
  libonnx-dev                               # onnx.proto itself
  libcjson-dev                              # JSON output of `kiln inspect --json`
  python3 python3-onnx python3-numpy        # test references (Debian's /usr/bin/python3)
  valgrind                                  # leak checks of the hostile-input tests
  gcc-aarch64-linux-gnu                     # aarch64 cross-built runtime (KILN_RUNTIME_ONLY), libgomp too
  libc6-dev-arm64-cross                     # its aarch64 libc and headers
  qemu-user-static                          # runs aarch64 runtime programs on the x86-64 host
)

kiln_missing_deps() {
  local pkg status
  for pkg in "${KILN_DEPS[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || echo "$pkg"
  done
}

kiln_install_deps() {
  local missing=()
  mapfile -t missing < <(kiln_missing_deps)
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: packages missing and not root; run: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  kiln_install_deps
fi
