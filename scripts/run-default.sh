#!/usr/bin/env bash
# run-default.sh - installs what is missing, builds kiln (Release, incremental, in build/) and runs
# the main job on the bundled default model. Extra arguments go to `kiln inspect`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/deps.sh
. "$root/scripts/deps.sh"
kiln_install_deps

cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=OFF -DKILN_SANITIZE=OFF >/dev/null
cmake --build "$root/build" -j"$(nproc)" -- --no-print-directory >/dev/null

cd "$root"
model=tests/models/mnist_cnn/model.onnx
echo "\$ build/kiln inspect $model $*"
build/kiln inspect "$model" "$@"
