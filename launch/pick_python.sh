#!/usr/bin/env bash
# Prints the newest usable Python for sagejax: python3.12 (newest jax/flax) when the machine has one that runs,
# also under pyenv, else python3 if it is >= 3.11. Usage: "$(launch/pick_python.sh)" -m venv .venv
set -euo pipefail
for candidate in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "$candidate"
    exit 0
  fi
done
echo "no Python >= 3.11 found" >&2
exit 1
