"""``signalsloop``: the operator's command line.

One module per command group (``events``, ``rollout``, ``doctor``, ...); the
queries they run live in :mod:`signalsloop.operations` as plain data, tested
without a terminal. This module builds the parser from the groups and runs
the chosen handler. Every :class:`~shared.errors.SignalsLoopError` ends as one red ``error:`` line
on stderr and exit code 2; anything unexpected is exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rich.console import Console

from shared.errors import SignalsLoopError
from shared.text import is_valid_unicode
from signalsloop.cli.common import EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_OK, EXIT_UNEXPECTED, Handler, print_error

# Command groups, each a module with ``register(subparsers)`` that imports
# its heavy dependencies inside its handlers, so ``--help`` is fast.
COMMAND_MODULES: tuple[str, ...] = (
    "signalsloop.cli.events",
    "signalsloop.cli.local",
    "signalsloop.cli.rollout",
    "signalsloop.cli.doctor",
    "signalsloop.cli.clock",
    "signalsloop.cli.notifications",
    "signalsloop.cli.dashboard",
    "signalsloop.cli.lifecycle",
    "signalsloop.cli.feedback",
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_ERROR
    if (problem := _unusable(args)) is not None:
        print_error(problem)
        return EXIT_ERROR
    try:
        return int(handler(args) or EXIT_OK)
    except SignalsLoopError as exc:
        print_error(exc.message)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        Console(stderr=True).print_exception()
        print_error(f"unexpected {type(exc).__name__}: {exc}")
        return EXIT_UNEXPECTED


#: Options where an empty string is a value, not a slip.
EMPTY_ALLOWED = frozenset({"body"})
#: Options whose dest is not their flag's name.
_LABELS = {"start": "--from", "end": "--to"}


def _unusable(args: argparse.Namespace) -> str | None:
    """The first argument value no command can use, named before any handler runs:

    - bytes that are not UTF-8, which Python keeps as lone surrogates and
      PostgreSQL's driver cannot encode (a traceback deep in a query);
    - an empty value, which was read as the option left out: ``events replay
      --dead --project "$PROJECT"`` with the variable unset replayed every
      project's dead letters, and ``dashboard --host ""`` listened everywhere.
    """
    for name, value in vars(args).items():
        label = _LABELS.get(name, name.replace("_", "-"))
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                continue
            if not is_valid_unicode(item):
                return f"the value of {label} is not valid UTF-8"
            if not item.strip() and name not in EMPTY_ALLOWED:
                return f"the value of {label} is empty: leave the option out instead"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signalsloop", description="Operate the SignalsLoop event backbone.")
    sub = parser.add_subparsers(title="commands", metavar="<command>")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser
