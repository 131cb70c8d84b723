"""Errors a user can fix (a config, data, checkpoint or command-line problem), told apart from bugs.

Each subclasses the builtin it refines (ValueError, FileNotFoundError, ...), so `except ValueError` still works.
The command-line entry points run through `cli(main)`: a SagejaxError is printed as one `error: <message>` line
with exit status 2; anything else is a bug and keeps its traceback (`--verbose` keeps it for both).
"""

from __future__ import annotations

import sys


class SagejaxError(Exception):
    """A problem with the user's input; its message names the problem and, where there is one, the fix."""


class ConfigError(SagejaxError, ValueError):
    """An impossible or inconsistent experiment config or command-line argument."""


class DataError(SagejaxError, ValueError):
    """A dataset, split or example that cannot be used as asked."""


class MissingError(SagejaxError, FileNotFoundError):
    """A file, folder, dataset build or checkpoint that is not where the run expects it."""


class ExistsError(SagejaxError, FileExistsError):
    """Output that already exists and would be overwritten."""


class CheckpointError(SagejaxError, RuntimeError):
    """A checkpoint that cannot be restored or resumed."""


def cli(main):
    """Wraps an absl `main(argv)`: SagejaxError → `error: <message>` on stderr and exit 2 (traceback only with
    --verbose)."""
    from absl import flags

    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, "Show the traceback of input errors too.")

    def wrapped(argv):
        try:
            return main(argv)
        except SagejaxError as error:
            if flags.FLAGS.verbose:
                raise
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapped
