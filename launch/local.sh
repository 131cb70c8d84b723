#!/usr/bin/env bash
# One host, every local accelerator (or the CPU): JAX sees all local devices and the mesh uses them.
#   launch/local.sh sage_decoy:sage workdirs/sage_decoy [--config.train.steps=1000 ...]
set -euo pipefail
config=${1:?usage: launch/local.sh CONFIG[:VARIANT] WORKDIR [overrides...]}
workdir=${2:?usage: launch/local.sh CONFIG[:VARIANT] WORKDIR [overrides...]}
shift 2
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m sagejax.main --config "$config" --workdir "$workdir" "$@"
