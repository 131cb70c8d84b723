#!/usr/bin/env bash
# Cloud TPU VM pod slice: the same command on every worker; jax.distributed finds the pod's
# coordinator itself. The workdir is one all workers share: a gs:// bucket folder (the workers install sagejax[gcs])
# or a filesystem path mounted on every worker.
#   launch/tpu_pod.sh [--dry_run] my-tpu us-central2-b sage_csv:sage,resnet50 gs://my-bucket/run1 [overrides...]
# --dry_run prints the gcloud commands instead of running them.
# Environment: SAGEJAX_REMOTE_DIR (checkout folder on the workers, default "sagejax"); on the workers the run
# gets SAGEJAX_DISTRIBUTED=1, and JAX reads the pod's topology from the TPU VM metadata.
set -euo pipefail
dry_run=0
if [[ ${1:-} == --dry_run ]]; then dry_run=1; shift; fi
usage="usage: launch/tpu_pod.sh [--dry_run] TPU_NAME ZONE CONFIG[:VARIANT] WORKDIR [overrides...]"
tpu=${1:?$usage}
zone=${2:?$usage}
config=${3:?$usage}
workdir=${4:?$usage}
shift 4
repo_dir=${SAGEJAX_REMOTE_DIR:-sagejax}
overrides=$(printf ' %q' "$@")
run() { if ((dry_run)); then printf '%q ' "$@" && echo; else "$@"; fi; }
# Copy this checkout to every worker, install it there, then start the run on all workers at once.
run gcloud compute tpus tpu-vm scp --recurse --worker=all --zone="$zone" "$(cd "$(dirname "$0")/.." && pwd)" "$tpu:$repo_dir"
remote="cd $(printf %q "$repo_dir") && pip install -q -e '.[gcs]' 'jax[tpu]' && SAGEJAX_DISTRIBUTED=1 python -m sagejax.main"
remote+=" --config $(printf %q "$config") --workdir $(printf %q "$workdir")$overrides"
run gcloud compute tpus tpu-vm ssh "$tpu" --worker=all --zone="$zone" --command="$remote"
