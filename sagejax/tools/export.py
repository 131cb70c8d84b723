"""Exports a trained run's parameters and BatchNorm statistics (no optimizer state) to a safetensors file, with the
run's config and checkpoint step as metadata; `sagejax.load_exported(path)` rebuilds the model from it.

  sagejax export WORKDIR --out params.safetensors
"""

from __future__ import annotations

from absl import app, flags, logging

from sagejax import api, errors

_OUT = flags.DEFINE_string("out", None, "The .safetensors file to write.")
flags.mark_flags_as_required(["out"])


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("usage: sagejax export WORKDIR --out FILE.safetensors")
    logging.set_verbosity(logging.WARNING)
    path = api.export(argv[1], _OUT.value)
    print(f"wrote {path}")


if __name__ == "__main__":
    errors.run(main)
