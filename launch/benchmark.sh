#!/usr/bin/env bash
# The step-time sweep recorded in BENCHMARKS.md: SAGE and its baselines against cross-entropy.
#   launch/benchmark.sh [OUT.jsonl]    (CPU: the Decoy MNIST model; accelerator: also ResNet-50 224² bf16)
set -euo pipefail
out=${1:-benchmark.jsonl}
cd "$(dirname "$0")/.."
python -m sagejax.benchmark --config configs/sage_decoy.py --methods xent,xent_aug,cyborg,sage --out "$out"
if python -c 'import jax, sys; sys.exit(jax.default_backend() == "cpu")'; then
  python -m sagejax.benchmark --config configs/sage_csv.py:sage,resnet50 --image_size 224 \
    --methods xent,sage --config.train.batch_size=256 --out "$out"
fi
