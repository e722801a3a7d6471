#!/usr/bin/env bash
# Here (no GPU): stage what the device machine needs for scripts/gpu/check.sh.
# The working tree travels by itself; the ignored build outputs (the addon + ONNX Runtime, node_modules) go in
# parts together with Node.js and the CUDA provider, via the shared stage script. Test the unpack here first:
#   bash scripts/gpu/pack.sh && bash .gpu/part01/stage.sh unpack && . /tmp/gpu/env.sh && node --version
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
[ -f build/Release/matchd.node ] && [ -f dist/cli/main.js ] || { echo "build first: npm install" >&2; exit 2; }
bash ../shared/gpu/stage.sh pack build/Release node_modules dist   # dist/: the compiled CLI (npm run build)
