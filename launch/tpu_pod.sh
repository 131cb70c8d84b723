#!/usr/bin/env bash
# Cloud TPU VM pod slice: the same command on every worker; jax.distributed finds the pod's
# coordinator itself. The workdir must be shared by all workers (e.g. a gs:// bucket).
#   launch/tpu_pod.sh my-tpu us-central2-b configs/sage_csv.py:sage,resnet50 gs://bucket/run1 [overrides...]
set -euo pipefail
tpu=${1:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG[:VARIANT] WORKDIR [overrides...]}
zone=${2:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG[:VARIANT] WORKDIR [overrides...]}
config=${3:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG[:VARIANT] WORKDIR [overrides...]}
workdir=${4:?usage: launch/tpu_pod.sh TPU_NAME ZONE CONFIG[:VARIANT] WORKDIR [overrides...]}
shift 4
repo_dir=${SAGEJAX_REMOTE_DIR:-sagejax}
overrides=$(printf ' %q' "$@")
# Copy this checkout to every worker, install it there, then start the run on all workers at once.
gcloud compute tpus tpu-vm scp --recurse --worker=all --zone="$zone" "$(dirname "$0")/.." "$tpu:$repo_dir"
gcloud compute tpus tpu-vm ssh "$tpu" --worker=all --zone="$zone" --command="
  cd $repo_dir && pip install -q -e . 'jax[tpu]' &&
  SAGEJAX_DISTRIBUTED=1 python -m sagejax.main --config $(printf %q "$config") --workdir $(printf %q "$workdir")$overrides"
