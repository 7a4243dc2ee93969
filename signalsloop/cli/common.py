"""What the CLI's command modules share: exit codes, the two consoles, a
command group's usage handler and the database URL. Every module of this
package may import it; it imports none of them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

EXIT_OK, EXIT_UNEXPECTED, EXIT_ERROR = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its reader left
Handler = Callable[[argparse.Namespace], int]


def print_error(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(Text(f"error: {message}", style="bold red"), highlight=False)


class _Terminal(Console):
    def on_broken_pipe(self) -> None:
        """rich exits 1 when the reader goes away (``| head``); the CLI's
        main stops quietly with 141, as Unix tools and its own writes do."""
        self.quiet = True
        raise BrokenPipeError


def terminal(**options: Any) -> Console:
    """Standard output; no wrapping or highlighting unless asked for."""
    return _Terminal(**{"soft_wrap": True, "highlight": False, **options})


def group_usage(parser: argparse.ArgumentParser) -> Handler:
    """A command group run without its sub-command prints its own help."""

    def run(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_ERROR

    return run


def database_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL under .signalsloop/pgdata."""
    from shared.settings import load_settings

    url = load_settings().database_url
    if url:
        return url
    from signalsloop.db import start_embedded

    return start_embedded()
