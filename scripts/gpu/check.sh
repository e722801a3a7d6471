#!/usr/bin/env bash
# There (the device machine), after the parts are unpacked and /tmp/gpu/env.sh is sourced:
#   bash scripts/gpu/check.sh
# Rehearsed on a CPU machine: pack.sh took 2m09s (5 parts, 228 MiB), unpack 16 s, this script ran through (the CUDA
# steps failing there, as they must without a GPU).
# Verifies the CUDA path and writes every result under $OUT (or /tmp/matchd-gpu): nvidia-smi, the engine test
# suite run with provider cuda, and the demo matcher on CUDA. Each step reports and the script goes on.
set -uo pipefail
out=${OUT:-/tmp/matchd-gpu}
mkdir -p "$out"
step() { echo "== $1"; }

step "device"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 && head -15 "$out/nvidia-smi.txt"
node --version

step "CUDA provider next to the addon"
node scripts/setup-cuda.mjs --from "${MATCHD_ORT_CUDA_DIR:?source /tmp/gpu/env.sh first}"

step "engine tests with provider cuda"
MATCHD_TEST_PROVIDER=cuda node scripts/test.mjs engine > "$out/engine-cuda.tap" 2>&1
echo "rc=$?"; grep -E '^# (tests|pass|fail)' "$out/engine-cuda.tap"; grep -E '^\s*not ok' "$out/engine-cuda.tap" | head -20

step "demo matcher on cuda (the session must report cuda)"
node bin/matchd.mjs score samples/red.jpg "a red object" "a blue object" --provider cuda --json > "$out/score-cuda.json" 2>&1
echo "rc=$?"; grep -E '"provider"|"band"' "$out/score-cuda.json"

step "bench: compute-bound throughput on cuda (if the bench model can be built here with PyTorch)"
if [ -f bench/model/build-clip.py ] && python3 -c 'import torch' 2>/dev/null; then
  python3 bench/model/build-clip.py > "$out/build-model.txt" 2>&1; echo "build rc=$?"; tail -3 "$out/build-model.txt"
  [ -f bench/compute.ts ] && node --import tsx bench/compute.ts --provider cuda --json > "$out/compute-cuda.json" 2>&1; echo "compute rc=$?"
fi
echo "results in $out"
