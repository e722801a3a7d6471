#!/usr/bin/env bash
# GME-Qwen2-VL parity with Hugging Face transformers, and CUDA throughput: one entry script that writes every figure
# under $OUT (default /tmp/matchd-gme-parity). On the GPU machine, after the staging of scripts/gpu/pack.sh:
#   bash .gpu/part01/stage.sh unpack && . /tmp/gpu/env.sh && bash scripts/gpu/gme-parity.sh
# GME_PREBUILT=DIR uses DIR/ckpt, DIR/pkg-float32, DIR/pkg-float16 made elsewhere (when that Python lacks onnx).
# Optional: GME_PARITY_2B=1 also builds a GME-2B-shaped random checkpoint (~4.4 GB, numpy only) and times matchd's
# float16 package on CUDA against transformers' float16 eager forward on the same weights (~2-4 minutes more).
#
# Steps (each reports and the script goes on; the summary says what ran):
#   1. a tiny random Qwen2VLForConditionalGeneration built by transformers itself, save_pretrained
#      (scripts/gpu/gme_hf_checkpoint.py; its config is tools/gme/make_tiny_checkpoint.py's tiny one);
#   2. `matchd model import` → float32 and float16 packages (needs a Python with numpy + onnx);
#   3. inputs: 6 images of different sizes and aspect ratios (pixels by the Pillow reference when available),
#      4 texts, prompts tokenised from plain strings; throughput inputs of exactly 256 and 1280 visual tokens;
#   4. the reference: transformers computed the GME way on CPU in float32 (scripts/gpu/gme_hf_reference.py:
#      model.visual → splice → text model with position_ids=None → last token → L2); its timing on CUDA;
#   5. matchd's embeddings: float32 and float16 packages on CPU and on CUDA (CUDA EP), with throughput;
#   6. compare: cos ≥ 0.9999 (float32) and |Δscore| < 0.005 (float16 vs float32) → $OUT/gme-parity.md / .json.
# Where transformers is missing (this project's CPU machine), steps 1 and 4 run a STAND-IN (the checkpoint from
# tools/gme/make_tiny_checkpoint.py --layout new, the reference from tools/gme/reference.py behind transformers 5's
# module layout) so that everything else is rehearsed; the summary then says "stand-in", never "transformers".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
out=${OUT:-/tmp/matchd-gme-parity}
work=${GME_WORK:-$(mktemp -d /tmp/matchd-gme-parity.XXXXXX)}
mkdir -p "$out" "$work"
exec > >(tee -a "$out/gme-parity.log") 2>&1
step() { echo "== $(date +%T) $*"; }
has() { "$1" -c "import $2" >/dev/null 2>&1; }
first_with() { # first Python (of GME_PYTHON, MATCHD_PYTHON, python3, /usr/bin/python3) that imports all of "$1"
  for p in ${GME_PYTHON:-} ${MATCHD_PYTHON:-} python3 /usr/bin/python3; do
    command -v "$p" >/dev/null 2>&1 && has "$p" "$1" && { echo "$p"; return 0; }
  done
  return 1
}
tsnode() { node --import tsx scripts/gpu/gme-parity.ts "$@"; }
t0=$SECONDS

step "environment"
{
  echo "node $(node --version 2>&1)"
  nvidia-smi -L 2>&1 || echo "nvidia-smi: not available"
  for p in ${GME_PYTHON:-} ${MATCHD_PYTHON:-} python3 /usr/bin/python3; do
    command -v "$p" >/dev/null 2>&1 || continue
    "$p" - <<'PY' 2>&1
import importlib, sys
mods = []
for m in ('numpy', 'onnx', 'torch', 'transformers', 'onnxruntime', 'PIL', 'tokenizers'):
    try:
        mods.append(f"{m} {getattr(importlib.import_module(m), '__version__', '?')}")
    except Exception:
        mods.append(f"{m} MISSING")
print(sys.executable, sys.version.split()[0] + ':', ', '.join(mods))
PY
  done
} | tee "$out/env.txt"

HF_PY=$(first_with "torch, transformers") && mode=transformers || mode=standin
TORCH_PY=${HF_PY:-$(first_with "torch, numpy")} || TORCH_PY=""
ONNX_PY=$(first_with "numpy, onnx") || ONNX_PY=""
PIL_PY=$(first_with "PIL, numpy") || PIL_PY=none
prebuilt=${GME_PREBUILT:-}
if [ -z "$ONNX_PY" ] && [ -z "$prebuilt" ]; then
  cat <<MSG | tee "$out/gme-parity.md"
MISSING: onnx. No Python here has both numpy and onnx, which \`matchd model import\` needs (its exporter writes the
graphs with onnx.helper). Install it (apt-get install python3-onnx, or pip install onnx into the Python named by
MATCHD_PYTHON) and run again. Without network, split the work instead:
  there: ${HF_PY:-python3} scripts/gpu/gme_hf_checkpoint.py \$OUT/prebuilt/ckpt      (comes back with \$OUT)
  here:  npx matchd model import PREBUILT/ckpt --out PREBUILT/pkg-float32
         npx matchd model import PREBUILT/ckpt --out PREBUILT/pkg-float16 --dtype float16
  there: carry PREBUILT, then GME_PREBUILT=PREBUILT bash scripts/gpu/gme-parity.sh
Stopping: nothing can be imported.
MSG
  exit 2
fi
if [ "$mode" = standin ] && [ -z "$TORCH_PY" ]; then
  echo "MISSING: no Python with torch (and transformers) here: no reference can be computed; stopping." | tee "$out/gme-parity.md"
  exit 2
fi
echo "reference: $mode (${HF_PY:-$TORCH_PY}); importer Python: $ONNX_PY; Pillow Python: $PIL_PY; work folder: $work"

step "1. checkpoint ($mode)"
if [ -n "$prebuilt" ]; then
  cp -r "$prebuilt/ckpt" "$prebuilt/pkg-float32" "$prebuilt/pkg-float16" "$work/" || { echo "GME_PREBUILT=$prebuilt: needs ckpt/, pkg-float32/, pkg-float16/"; exit 2; }
  label="transformers (checkpoint from GME_PREBUILT, imported elsewhere) (CPU, float32, eager attention)"
  [ "$mode" = transformers ] && label="transformers $("$HF_PY" -c 'import transformers; print(transformers.__version__)') (CPU, float32, eager attention; packages imported elsewhere)"
elif [ "$mode" = transformers ]; then
  "$HF_PY" scripts/gpu/gme_hf_checkpoint.py "$work/ckpt" | tee "$out/checkpoint.json" || { echo "checkpoint failed"; exit 2; }
  label="transformers $("$HF_PY" -c 'import transformers; print(transformers.__version__)') (CPU, float32, eager attention)"
else
  "$TORCH_PY" tools/gme/make_tiny_checkpoint.py "$work/ckpt" --layout new --seed 7 || { echo "checkpoint failed"; exit 2; }
  label="STAND-IN: tools/gme/reference.py behind transformers 5's module layout (transformers is not installed here)"
fi
ls -l "$work/ckpt" | tee -a "$out/checkpoint.json"

step "2. matchd model import (float32, float16)"
for dt in float32 float16; do
  [ -n "$prebuilt" ] && { echo "prebuilt package: $work/pkg-$dt"; continue; }
  MATCHD_PYTHON=$ONNX_PY node bin/matchd.mjs model import "$work/ckpt" --out "$work/pkg-$dt" --dtype "$dt" --force \
    > "$out/import-$dt.log" 2>&1; rc=$?
  tail -1 "$out/import-$dt.log"; [ $rc -eq 0 ] || { echo "import $dt failed (rc=$rc): see import-$dt.log"; exit 2; }
done

step "3. inputs"
tsnode prepare --package "$work/pkg-float32" --work "$work" --python "$PIL_PY" || { echo "prepare failed"; exit 2; }

step "4. reference embeddings ($mode)"
ref=(scripts/gpu/gme_hf_reference.py --checkpoint "$work/ckpt")
[ "$mode" = standin ] && ref+=(--standin)
"${HF_PY:-$TORCH_PY}" "${ref[@]}" --inputs "$work/ref-in" --out "$work/ref.npy" --device cpu --dtype float32 \
  || echo "reference failed"
tp_args() { # the throughput inputs, outputs named with prefix $1
  for x in 256 1280 texts; do printf '%s\n' --inputs "$work/tp-$x" --out "$work/$1tp-$x.npy"; done
}
mapfile -t tp < <(tp_args "")
mapfile -t tp2b < <(tp_args 2b-)
if [ "$mode" = transformers ] && "$HF_PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  for dt in float32 float16; do
    "$HF_PY" "${ref[@]}" "${tp[@]}" --device cuda --dtype "$dt" --time 5 --timing-out "$work/hf-timing-cuda-$dt.json" \
      || echo "transformers timing on cuda ($dt) failed"
  done
else
  "${HF_PY:-$TORCH_PY}" "${ref[@]}" "${tp[@]}" --device cpu --dtype float32 --time 3 --timing-out "$work/hf-timing-cpu-float32.json" \
    || echo "reference timing on cpu failed"
fi

step "5. matchd embeddings and throughput"
[ -n "${MATCHD_ORT_CUDA_DIR:-}" ] && node scripts/setup-cuda.mjs --from "$MATCHD_ORT_CUDA_DIR"
for provider in cpu cuda; do
  for dt in float32 float16; do
    tag="$provider-${dt/float/f}"
    tsnode embed --package "$work/pkg-$dt" --work "$work" --tag "$tag" --provider "$provider" --throughput 5 || echo "$tag: rc=$?"
  done
done

if [ "${GME_PARITY_2B:-0}" = 1 ]; then
  step "5b. GME-2B-shaped random package, float16, CUDA (matchd) vs transformers float16 eager (same weights)"
  "${TORCH_PY:-$ONNX_PY}" tools/gme/make_tiny_checkpoint.py "$work/ckpt-2b" --size 2b --dtype BF16 --shards 2 --layout new \
    && MATCHD_PYTHON=$ONNX_PY node bin/matchd.mjs model import "$work/ckpt-2b" --out "$work/pkg-2b-float16" --dtype float16 --force \
      > "$out/import-2b.log" 2>&1 \
    && tsnode embed --package "$work/pkg-2b-float16" --work "$work" --tag cuda-2b-f16 --provider cuda --throughput 3
  if [ "$mode" = transformers ]; then
    "$HF_PY" scripts/gpu/gme_hf_reference.py --checkpoint "$work/ckpt-2b" "${tp2b[@]}" --device cuda --dtype float16 \
      --time 3 --timing-out "$work/hf-timing-2b-cuda-float16.json" || echo "transformers 2B timing failed"
  fi
fi

step "6. compare"
tsnode compare --work "$work" --out "$out" --reference-label "$label"; rc=$?
cp "$work"/emb-*.json "$work"/hf-timing-*.json "$work/items.json" "$out/" 2>/dev/null
echo "== done in $((SECONDS - t0)) s (rc=$rc); results in $out"
exit $rc
