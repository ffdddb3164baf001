#!/usr/bin/env bash
# The scoring issue's GPU figures in one run on a lent GPU machine (one H200; 15 minutes of device time per
# session, the machine's start included), most important first, each step under its own time limit so that one
# slow step cannot eat the others' time. Every step's log goes to $OUT (or a new temporary folder) as it runs, so what
# finished comes back even when the call is cut short.
#
#   1. bench_scoring: end to end (score, pipeline) vs the model alone, CUDA bf16, batch 64, 8 decode workers, 48
#      photos (on a GPU the steady-state rows need more photos than on a CPU to rise above the start-up's noise);
#   2. bench_train --devices cuda: both stages, fp32 and bf16, batch 64;
#   3. bench_inference: VIAA at batch 64 and 256, bf16, eager and torch.compile'd, beside a bare Swin-T pass;
#   4. bench_scoring --compile (the model alone and the pipeline);
#   5. score under `accelerate launch` on the GPU (one process: the machine has one GPU).
#
# The GPU machine has no network and no `datasets`/`evaluate` (the package imports them only for dataset jobs;
# these steps run without them). torch, transformers, timm, accelerate and scikit-image are in its image, and the
# package runs from this folder through PYTHONPATH. Its transformers and timm may be older than this project's:
# `--fetch-wheels`, run here first, saves this environment's versions of both into .whl/ (ignored by git, ~16 MB),
# and the run installs whatever .whl/ holds into a scratch folder ahead of the machine's own packages.
#
# Through the device tool, from the repository root (leave time for a rerun):
#   bash benchmarks/gpu_checks.sh --fetch-wheels                                  # here, once
#   run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"], timeout_s=560)   # the steps' limits add up to 510 s
# A CPU rehearsal of the same steps at toy sizes (a few minutes on 2 cores):
#   GPU_CHECKS_SMOKE=1 bash benchmarks/gpu_checks.sh
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = "--fetch-wheels" ]; then
  mkdir -p .whl
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
  for package in transformers timm; do
    version=$($PYTHON -c "import importlib.metadata as m; print(m.version('$package'))") || exit 2
    $PYTHON -m pip download -q --no-deps --only-binary=:all: -d .whl "$package==$version" || exit 2
  done
  ls -l .whl
  exit 0
fi

OUT=${OUT:-$(mktemp -d -t gpu-checks-XXXXXX)}
mkdir -p "$OUT"
echo "logs: $OUT"
scratch=$(mktemp -d)  # the carried wheels' install and, unless HF_HOME is set, a scratch Hub cache (ONNX exports)
trap 'rm -rf "$scratch"' EXIT
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HOME=${HF_HOME:-$scratch/hf}
if compgen -G ".whl/*.whl" >/dev/null; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$scratch/site" .whl/*.whl || exit 2
  export PYTHONPATH=$PYTHONPATH:$scratch/site
fi

if [ "${GPU_CHECKS_SMOKE:-0}" = 1 ]; then
  device=cpu; variant=test; batch=4; big=8; scoring=(--per-size 1 --repeats 1 --threads 2); limit=(120 120 180 300 120)
else
  device=cuda; variant=tiny; batch=64; big=256; scoring=(--per-size 8 --repeats 3 --num-workers 8); limit=(150 90 120 110 40)
fi

step() {  # step NAME SECONDS COMMAND...: runs COMMAND under a time limit, its output in $OUT/NAME.log
  local name=$1 seconds=$2
  shift 2
  echo "== $name (at most ${seconds}s): $*" | tee "$OUT/$name.log"
  local start=$SECONDS
  timeout --kill-after=10 "$seconds" "$@" >>"$OUT/$name.log" 2>&1
  local code=$?
  echo "== $name: exit $code after $((SECONDS - start))s" | tee -a "$OUT/$name.log"
  grep -E '^\|' "$OUT/$name.log" || true
}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PYTHON -c "import torch, transformers, timm, accelerate; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| timm', timm.__version__, '| accelerate', accelerate.__version__)"
} 2>&1 | tee "$OUT/machine.log"

step scoring "${limit[0]}" $PYTHON benchmarks/bench_scoring.py --device $device --dtype bfloat16 --batch-size $batch "${scoring[@]}"
step train "${limit[1]}" $PYTHON benchmarks/bench_train.py --devices $device --variant $variant --batch-size $batch --repeats 3
step inference "${limit[2]}" $PYTHON benchmarks/bench_inference.py --devices $device --variant $variant --modes VIAA \
  --dtypes bfloat16 --batch-sizes $batch $big --compile
# The pipeline route only: each `score` run compiles anew, which a few dozen photos cannot amortise.
step scoring-compiled "${limit[3]}" $PYTHON benchmarks/bench_scoring.py --device $device --dtype bfloat16 --batch-size $batch \
  --compile --routes pipeline "${scoring[@]}"

# Score under accelerate on the GPU: a small folder, a random T-shape model, results merged by the main process.
work=$(mktemp -d)
$PYTHON - "$work" "$variant" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from aesformer_hf import AesformerConfig, AesformerForAesthetic, AesformerImageProcessor
from aesformer_hf.testing_utils import tiny_config

work, variant = Path(sys.argv[1]), sys.argv[2]
config = tiny_config(image_size=64) if variant == "test" else AesformerConfig.from_variant(variant)
model = AesformerForAesthetic(config.to_vision_only())
model.save_pretrained(work / "model")
height, width = model.model.image_size
AesformerImageProcessor(size={"height": height, "width": width}).save_pretrained(work / "model")
(work / "photos").mkdir()
for k in range(64):
    pixels = np.random.default_rng(k).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(work / "photos" / f"{k:03d}.jpg")
EOF
step accelerate "${limit[4]}" $PYTHON -m accelerate.commands.launch --num_processes 1 -m aesformer_hf.cli score \
  "$work/photos" --model "$work/model" --output "$work/scores.jsonl" --device $device --batch-size 16 --no-progress
wc -l "$work/scores.jsonl" 2>&1 | tee -a "$OUT/accelerate.log"
rm -rf "$work"
echo "done: $(date -u)"
