#!/usr/bin/env bash
# run-default.sh - installs what is missing, builds kiln (Release, incremental, in build/) and runs
# the main job on the bundled default model: inspect it, compile and run it on its bundled input,
# and check the outputs against torch's. Extra arguments go to `kiln run` (e.g. -O0, --threads 2).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
kiln_install_deps

cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=OFF -DKILN_SANITIZE=OFF >/dev/null
cmake --build "$root/build" -j"$(nproc)" -- --no-print-directory >/dev/null

cd "$root"
case_dir=tests/models/mnist_cnn
model=$case_dir/model.onnx
echo "\$ build/kiln inspect $model"
build/kiln inspect "$model"
echo
echo "\$ build/kiln run $model --inputs $case_dir/test_data_set_0 $*"
build/kiln run "$model" --inputs "$case_dir/test_data_set_0" "$@"
echo
echo "\$ build/kiln check $case_dir --atol 1e-4   # against torch's outputs"
build/kiln check "$case_dir" --atol 1e-4
