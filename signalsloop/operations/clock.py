"""``signalsloop clock tick --at <time> [--project P]``: publish the clock.tick
for a given time, for tests, the demo and backfills.

The periodic schedule (``run_periodic()``) publishes ticks on its own at the
cadence in ``backbone_config.clock_interval_seconds``; this command publishes
one for any time. Ids are deterministic per (time, project), so a tick already
published is not published again.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    import psycopg


def publish_tick(conn: psycopg.Connection[Any], at: datetime, project: UUID | None = None) -> int:
    """How many tick events were new (one per project, or 0 when already published)."""
    from shared.errors import BadRequest
    from signalsloop.operations.query import query

    if project is not None and not query(conn, "select 1 from public.projects where id = %s", (project,)):
        raise BadRequest(f"unknown project {project}")
    rows = query(conn, "select public.publish_clock_tick(%s, %s) as n", (at, project))
    return int(rows[0]["n"])


def register(sub: Any) -> None:
    from signalsloop.cli import _usage

    clock = sub.add_parser("clock", help="time as events (clock.tick)")
    clock.set_defaults(handler=_usage(clock))
    commands = clock.add_subparsers(title="clock commands", metavar="<cmd>")
    tick = commands.add_parser("tick", help="publish the clock.tick for a time (default: now)")
    tick.add_argument("--at", help="ISO time (2026-12-01T10:00Z) or a duration ago (2h); default: now")
    tick.add_argument("--project", help="only this project id (default: every project)")
    tick.set_defaults(handler=cmd_tick)


def cmd_tick(args: argparse.Namespace) -> int:
    from datetime import UTC

    from signalsloop.cli import _out, database_url
    from signalsloop.db import connect
    from signalsloop.operations.query import parse_time, parse_uuid

    at = parse_time(args.at) if args.at else datetime.now(UTC)
    project = parse_uuid(args.project, "project id") if args.project else None
    with connect(database_url()) as conn:
        count = publish_tick(conn, at, project)
    when = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _out().print(f"clock.tick {when}: published {count} tick{'' if count == 1 else 's'}"
                 + ("" if count else " (already published)"))
    return 0
