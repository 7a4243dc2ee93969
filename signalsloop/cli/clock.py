"""``signalsloop clock tick --at <time> [--project P]``: publish the clock.tick
for a given time. Ids are deterministic per (time, project), so a tick already
published is not published again."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from signalsloop.cli.common import EXIT_OK, database_url, group_usage, terminal


def register(sub: Any) -> None:
    clock = sub.add_parser("clock", help="time as events (clock.tick)")
    clock.set_defaults(handler=group_usage(clock))
    commands = clock.add_subparsers(title="clock commands", metavar="<cmd>")
    tick = commands.add_parser("tick", help="publish the clock.tick for a time (default: now)")
    tick.add_argument("--at", help="ISO time (2026-12-01T10:00Z) or a duration ago (2h); default: now")
    tick.add_argument("--project", help="only this project id (default: every project)")
    tick.set_defaults(handler=cmd_tick)


def cmd_tick(args: argparse.Namespace) -> int:
    from datetime import UTC

    from signalsloop.db import connect
    from signalsloop.operations.clock import publish_tick
    from signalsloop.operations.query import parse_time, parse_uuid

    at = parse_time(args.at) if args.at else datetime.now(UTC)
    project = parse_uuid(args.project, "project id") if args.project else None
    with connect(database_url()) as conn:
        count = publish_tick(conn, at, project)
    when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    terminal().print(f"clock.tick {when}: published {count} tick{'' if count == 1 else 's'}"
                     + ("" if count else " (already published)"))
    return EXIT_OK
