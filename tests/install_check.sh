#!/usr/bin/env bash
# install_check.sh - checks `cmake --install` end to end: installs a build into a scratch prefix,
# then builds and runs throwaway consumer programs against it through find_package(kiln) (static
# and shared runtime) and through pkg-config, and checks they pull in no LLVM or protobuf.
# Usage: install_check.sh BUILD_DIR [SCRATCH_DIR]   (SCRATCH_DIR is emptied; default: a mktemp dir)
set -euo pipefail
build=$(cd "${1:?usage: install_check.sh BUILD_DIR [SCRATCH_DIR]}" && pwd)
scratch=${2:-}
if [ -z "$scratch" ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
else
  rm -rf "$scratch" && mkdir -p "$scratch"
fi
prefix=$scratch/prefix
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")

fail() { echo "install_check: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in lib/libkiln_rt.a lib/libkiln_rt.so include/kiln/kiln_aot.h lib/pkgconfig/kiln_rt.pc \
         lib/cmake/kiln/kilnConfig.cmake lib/cmake/kiln/kilnConfigVersion.cmake; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done

mkdir -p "$scratch/consumer"
cat >"$scratch/consumer/main.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <kiln_aot.h>
int main(void) {
  const char *ok = kn_aot_status_name(KN_AOT_OK);
  printf("kn_aot_status_name(0) = %s\n", ok);
  return ok != NULL && strlen(ok) > 0 ? 0 : 1;
}
C
cat >"$scratch/consumer/engine.c" <<'C'
#include <stdio.h>
#include <kiln.h>
int main(void) {
  printf("kn_status_name(KN_ERR_FORMAT) = %s\n", kn_status_name(KN_ERR_FORMAT));
  return 0;
}
C
# A stand-in for a `kiln compile --exe` model object: only what libkiln_rt_main asks of it.
cat >"$scratch/consumer/fake_model.c" <<'C'
#include <kiln_aot.h>
static int32_t entry(void *ctx, void *const *in, void *const *out, const void *const *w,
                     uint8_t *arena) {
  (void)ctx, (void)in, (void)out, (void)w, (void)arena;
  return 0;
}
static const KnAotInfo info = {.abi_version = KN_AOT_ABI_VERSION, .name = "fake", .source = "-",
                               .target = "-", .cpu = "generic", .entry = entry};
const KnAotInfo *kn_aot_main_info(void);
const KnAotInfo *kn_aot_main_info(void) { return &info; }
C
cat >"$scratch/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(kiln_consumer LANGUAGES C)
find_package(kiln 0.1 REQUIRED)
add_executable(use_static main.c)
target_link_libraries(use_static PRIVATE kiln::kiln_rt)
add_executable(use_shared main.c)
target_link_libraries(use_shared PRIVATE kiln::kiln_rt_shared)
if(TARGET kiln::kiln_rt_main)
  add_executable(use_main fake_model.c)
  target_link_libraries(use_main PRIVATE kiln::kiln_rt_main)
endif()
if(TARGET kiln::kiln)
  add_executable(use_engine engine.c)
  target_link_libraries(use_engine PRIVATE kiln::kiln)
endif()
if(DEFINED KILN_EXECUTABLE)
  message(STATUS "KILN_EXECUTABLE=${KILN_EXECUTABLE}")
endif()
CM
cmake -S "$scratch/consumer" -B "$scratch/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_C_COMPILER="$cc" >"$scratch/consumer.log" || { cat "$scratch/consumer.log"; fail "consumer configure"; }
grep "KILN_EXECUTABLE" "$scratch/consumer.log" || true
cmake --build "$scratch/consumer/build" >>"$scratch/consumer.log" 2>&1 || { cat "$scratch/consumer.log"; fail "consumer build"; }
for exe in use_static use_shared; do
  "$scratch/consumer/build/$exe" || fail "$exe failed"
  if ldd "$scratch/consumer/build/$exe" | grep -E 'libLLVM|libprotobuf|libcjson'; then
    fail "$exe links LLVM/protobuf/cJSON"
  fi
done

if [ -e "$prefix/lib/libkiln.so" ]; then
  "$scratch/consumer/build/use_engine" | grep -q "= format" || fail "use_engine failed"
  echo "use_engine (kiln::kiln): ok"
fi
if [ -e "$prefix/lib/libkiln_rt_main.a" ]; then
  "$scratch/consumer/build/use_main" --help 2>&1 | grep -q usage || fail "use_main --help printed no usage"
  echo "use_main (kiln::kiln_rt_main): --help ok"
fi

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
echo "pkg-config --cflags --libs kiln_rt: $(pkg-config --cflags --libs kiln_rt)"
echo "pkg-config --static --libs kiln_rt: $(pkg-config --static --libs kiln_rt)"
pkg-config --static --libs kiln_rt | grep -Eq -- '-fopenmp|-lgomp|-lomp' || fail "no OpenMP in Libs.private"
# shellcheck disable=SC2046 # word splitting of pkg-config's flags is intended
"$cc" -o "$scratch/use_pc" "$scratch/consumer/main.c" $(pkg-config --cflags --libs kiln_rt) \
  -Wl,-rpath,"$prefix/lib" || fail "pkg-config build"
"$scratch/use_pc" || fail "pkg-config program failed"
# The example project (tests/aot_consumer): a model compiled at build time by the installed kiln
# (KILN_EXECUTABLE) and linked against the installed runtime, run on its test data and checked
# against torch's outputs.
if [ -x "$prefix/bin/kiln" ]; then
  src=$(cd "$(dirname "$0")" && pwd)
  model=$src/models/mnist_cnn
  cmake -S "$src/aot_consumer" -B "$scratch/aot_consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
        -DMODEL="$model/model.onnx" >"$scratch/aot_consumer.log" || { cat "$scratch/aot_consumer.log"; fail "aot_consumer configure"; }
  cmake --build "$scratch/aot_consumer" >>"$scratch/aot_consumer.log" 2>&1 || { cat "$scratch/aot_consumer.log"; fail "aot_consumer build"; }
  mkdir -p "$scratch/aot_out"
  "$scratch/aot_consumer/consumer" "$model/test_data_set_0/input_0.pb" "$scratch/aot_out" || fail "aot_consumer run"
  /usr/bin/python3 - "$scratch/aot_out/output_0.pb" "$model/test_data_set_0/output_0.pb" <<'PY' || fail "aot_consumer output differs from torch's"
import sys, numpy as np, onnx
from onnx import numpy_helper
got, want = (numpy_helper.to_array(onnx.load_tensor(p)) for p in sys.argv[1:3])
assert got.shape == want.shape and np.allclose(got, want, rtol=1e-3, atol=1e-4), (got, want)
PY
  if ldd "$scratch/aot_consumer/consumer" | grep -E 'libLLVM|libprotobuf|libcjson'; then
    fail "aot_consumer links LLVM/protobuf/cJSON"
  fi
  echo "aot_consumer (find_package, model compiled by the installed kiln): ok"
fi
echo "install_check: ok"
