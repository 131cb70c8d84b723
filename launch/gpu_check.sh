#!/usr/bin/env bash
# The accelerator check (estimated ≤ 15 minutes on one GPU; not yet run on one): train-step rows of ResNet-50
# xent / sage (and sage with stop_gradient_targets, with view_fraction=0.5) and ViT-B/16 xent at 224² bf16, batch
# 256; the fine-tune rows (sage_finetune: ResNet-50 and ViT-B/16 started from a safetensors file, xent and sage,
# with and without optim.accumulate_steps=4); the input-pipeline row (the Decoy MNIST loader against its step) and
# ResNet-50's eval forward under the 19 ImageNet-C corruptions × 5 severities against the plain forward; then
# appends the tables to BENCHMARKS.md under the device's name.
#   launch/gpu_check.sh [--dry_run] [OUT_DIR]        (default OUT_DIR: benchmarks/gpu_check)
# Environment: GPU_CHECK_TINY=1 runs the same rows at toy shapes (ResNet-18 width 4, ViT-tiny, 32², batch 8,
# 2 steps; fine-tune rows of a ResNet-50 of width 4 with accumulation only) for a CPU check; GPU_CHECK_ROWS picks groups of rows
# (default steps,finetune,input,corruptions; e.g. two calls of under 10 minutes: steps,input then finetune,corruptions); BENCHMARKS_FILE names the file to append to (default BENCHMARKS.md); PYTHON the
# interpreter (default: the `python` on PATH).
set -euo pipefail
dry_run=0
if [[ ${1:-} == --dry_run ]]; then dry_run=1; shift; fi
cd "$(dirname "$0")/.."
out=${1:-benchmarks/gpu_check}
benchmarks=${BENCHMARKS_FILE:-BENCHMARKS.md}
if [[ ${GPU_CHECK_TINY:-0} == 1 ]]; then
  resnet=resnet18 vit=vit_tiny size=32 batch=8 steps=2
  resnet_config=sage_decoy:smoke vit_config=sage_decoy:xent,smoke
  input=(--config=sage_decoy:smoke --input_batches=3)
  corruptions=(--config=sage_decoy:xent,smoke --corruptions=brightness)
  finetune=(resnet50,smoke) accumulations=(4)
else
  resnet=resnet50 vit=vit_b16 size=224 batch=256 steps=20
  resnet_config=sage_csv:sage,resnet50 vit_config=sage_csv:xent,vit_b16
  input=(--config=sage_decoy --input_batches=50)
  corruptions=(--config=sage_csv:xent,resnet50)
  finetune=(resnet50 vit_b16) accumulations=(1 4)
fi
common=(--dtypes=bfloat16 --image_sizes="$size" --batch_sizes="$batch" --steps="$steps" --warmup=3)
python=${PYTHON:-python}  # the interpreter to run (PYTHON=path/to/venv/bin/python outside an activated venv)
run() { if ((dry_run)); then printf '%q ' "$@" && echo; else "$@"; fi; }
wanted() { [[ ",${GPU_CHECK_ROWS:-steps,finetune,input,corruptions}," == *",$1,"* ]]; }
((dry_run)) || { rm -f "$out"/*.jsonl "$out"/*.md; mkdir -p "$out"; }
if wanted steps; then
  run "$python" -m sagejax.tools.benchmark --config="$resnet_config" --models="$resnet" \
    --methods=xent,sage,sage/stop_gradient_targets=True,sage/view_fraction=0.5 "${common[@]}" --out="$out/resnet.jsonl"
  run "$python" -m sagejax.tools.benchmark --config="$vit_config" --models="$vit" --methods=xent \
    "${common[@]}" --out="$out/vit.jsonl"
fi
wanted finetune || finetune=()
for backbone in "${finetune[@]}"; do  # random weights in a safetensors file stand in for the pretrained ones
  weights="$out/${backbone%%,*}.safetensors"
  ((dry_run)) || "$python" - "sage_finetune:xent,$backbone" "$weights" <<'EOF'
import sys
import numpy as np
from safetensors.numpy import save_file
from sagejax import configs, models
from sagejax.models.named import named_arrays
model = models.build_model(configs.load(sys.argv[1]))
save_file({k: np.asarray(v) for k, v in named_arrays(model).items()}, sys.argv[2], metadata={"format": "sagejax"})
EOF
  for accumulate in "${accumulations[@]}"; do
    run "$python" -m sagejax.tools.benchmark --config="sage_finetune:sage,$backbone" --config.init.path="$weights" \
      --config.optim.accumulate_steps="$accumulate" --methods=xent,sage "${common[@]}" \
      --out="$out/finetune_${backbone%%,*}_accumulate$accumulate.jsonl"
  done
done
if wanted input; then
  run "$python" -m sagejax.tools.benchmark --mode=input "${input[@]}" --steps="$steps" --out="$out/input.jsonl"
fi
if wanted corruptions; then
  run "$python" -m sagejax.tools.benchmark --mode=corruptions "${corruptions[@]}" --image_sizes="$size" \
    --batch_sizes="$batch" --steps=3 --warmup=1 --out="$out/corruptions.jsonl"
fi
((dry_run)) && exit 0
first=$(ls "$out"/*.jsonl | head -1)
device=$("$python" -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["device"])' "$first")
{
  echo
  echo "## GPU check: $device ($(date -u +%Y-%m-%d))"
  echo
  echo "\`launch/gpu_check.sh\`$([[ ${GPU_CHECK_TINY:-0} == 1 ]] && echo ' (GPU_CHECK_TINY=1: toy shapes)')"
  echo
  for table in "$out"/resnet.md "$out"/vit.md "$out"/finetune_*.md "$out"/input.md "$out"/corruptions.md; do
    [[ -f $table ]] || continue
    [[ $table == */finetune_* ]] && printf '\nFine-tune, weights from a safetensors file: %s\n' "$(basename "$table" .md)"
    echo
    cat "$table"
  done
} >>"$benchmarks"
echo "appended the rows to $benchmarks"
