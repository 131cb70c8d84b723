"""Errors a user can fix (a config, data, checkpoint or command-line problem), told apart from bugs.

Each subclasses the builtin it refines (ValueError, FileNotFoundError, ...), so `except ValueError` still works.
The command-line entry points run through `run(main)`: a SagejaxError is printed as one `error: <message>` line
with exit status 2; anything else is a bug and keeps its traceback (`--verbose` keeps it for both).
"""

from __future__ import annotations

import errno
import re
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


class StorageError(SagejaxError, OSError):
    """A disk that is full under the run's folder (what orbax or a dataset build hit, named in one line)."""


class DataWarning(UserWarning):
    """Data that can be used but probably not as the user meant (a colour saliency map, a repeated image)."""


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
        except Exception as error:
            full = caused_by(error, lambda e: isinstance(e, OSError) and e.errno == errno.ENOSPC)
            if full is None or flags.FLAGS.verbose:
                raise
            where = f" writing {full.filename}" if full.filename else ""
            print(f"error: no space left on the disk{where}: free space and rerun the command", file=sys.stderr)
            sys.exit(2)

    return wrapped


def caused_by(error: BaseException | None, predicate) -> BaseException | None:
    """The first exception of `error`'s chain (itself, then what it was raised from: libraries wrap OS errors) for
    which `predicate` holds, else None."""
    while error is not None:
        if predicate(error):
            return error
        error = error.__cause__ or error.__context__
    return None


def _unknown_override(argv, error: Exception) -> str | None:
    """Names the `--config.a.b=v` argument of argv with the unknown field that ml_collections' `error` reports."""
    text = str(error)
    key = re.search(r"'(\w+)\\?'", text)
    suggestion = re.search(r'Did you mean "(\w+)"', text)
    for arg in argv[1:]:
        path = arg.lstrip("-").split("=", 1)[0].split(".")
        if key and path[0] == "config" and key[1] in path[1:]:
            parent = ".".join(path[: path.index(key[1], 1)])
            hint = f"did you mean {suggestion[1]!r}?" if suggestion else "a typo, or a field of another block?"
            return f"{arg}: {parent} has no field {key[1]!r} ({hint})"
    return None


def _exit_with(message) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _parse_flags(argv):
    """absl's flag parsing, with a config that cannot be loaded (unknown name or variant, missing or broken file)
    and an override of an unknown config field each reported as one error line (exit 2)."""
    from absl import app, flags

    try:
        return flags.FLAGS(argv)
    except SagejaxError as error:  # a config file that is not there (absl passes non-ValueErrors through)
        _exit_with(error)
    except flags.Error as error:
        if isinstance(error.__context__, SagejaxError):  # absl re-raised the config's ConfigError
            _exit_with(error.__context__)
        return app.parse_flags_with_usage(argv)  # absl's own message and usage hint
    except (AttributeError, KeyError) as error:  # what ml_collections raises for an unknown field
        message = _unknown_override(argv, error)
        if message is None:
            raise
        _exit_with(message)


def run(main):
    """`absl.app.run` of an entry point's main, through `cli` and with clear errors for unknown config fields."""
    from absl import app

    app.run(cli(main), flags_parser=_parse_flags)
