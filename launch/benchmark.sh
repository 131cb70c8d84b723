#!/usr/bin/env bash
# The step-time sweeps recorded in BENCHMARKS.md: SAGE and its baselines against cross-entropy, the SAGE overhead
# rows, RRR against cross-entropy, the growth with batch and image size, and with 1/2/4/8 simulated CPU devices.
#   launch/benchmark.sh [OUT_DIR]    (CPU: the Decoy MNIST model; on an accelerator run launch/gpu_check.sh too)
set -euo pipefail
out=${1:-benchmarks}
cd "$(dirname "$0")/.."
mkdir -p "$out"
bench=("${PYTHON:-python}" -m sagejax.tools.benchmark --config sage_decoy --steps 10)
"${bench[@]}" --methods xent,xent_aug,cyborg,sage --out "$out/methods.jsonl"
overhead=xent,sage,sage/stop_gradient_targets=True,sage/stop_gradient_targets=True/ce_views=x_keep
overhead+=,sage/view_fraction=0.5,sage/view_fraction=0.5/stop_gradient_targets=True
"${bench[@]}" --methods "$overhead" --out "$out/overhead.jsonl"
"${bench[@]}" --methods xent,rrr --steps 20 --out "$out/rrr.jsonl"  # RRR's double back-propagation
# 1/2/4/8 simulated CPU devices: how compute, memory and all-reduce bytes split (not real scaling: shared cores)
JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=8 \
  "${bench[@]}" --methods xent,sage --device_counts 1,2,4,8 --out "$out/scaling.jsonl"
"${bench[@]}" --methods xent,sage --batch_sizes 16,32,64,128 --out "$out/batch.jsonl"
"${bench[@]}" --methods xent,sage --image_sizes 32,64 --out "$out/size.jsonl"
"${bench[@]}" --mode=input --out "$out/input.jsonl"
# the robustness evaluator's corruption sweeps (CIFAR-10-C's 19 × 5 and MNIST-C's 15) against the plain eval forward
"${bench[@]}" --mode=corruptions --methods xent --batch_sizes 64 --steps 3 --warmup 1 --out "$out/corruptions_cifar.jsonl"
"${bench[@]}" --mode=corruptions --methods xent --batch_sizes 64 --steps 3 --warmup 1 --table mnist --out "$out/corruptions_mnist.jsonl"
