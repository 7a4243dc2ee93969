"""``signalsloop notifications report``: what notify sent, digested or held
back over a window, and the share of messages marked useful."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from signalsloop.cli.common import EXIT_OK, database_url, group_usage, terminal


def register(sub: Any) -> None:
    group = sub.add_parser("notifications", help="what notify sent, digested or held back, and what was useful")
    group.set_defaults(handler=group_usage(group))
    commands = group.add_subparsers(title="notifications commands", metavar="<cmd>")
    rep = commands.add_parser("report", help="outcomes by reason and the share marked useful, over a window")
    rep.add_argument("--since", default="7d", help="window, e.g. 24h or 7d (default 7d)")
    rep.add_argument("--project", help="only this project id")
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    rep.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC

    from signalsloop.db import connect
    from signalsloop.operations.notifications import report
    from signalsloop.operations.query import parse_duration, parse_uuid

    window: timedelta = parse_duration(args.since)
    project = parse_uuid(args.project, "project id") if args.project else None
    with connect(database_url()) as conn:
        data = report(conn, datetime.now(UTC) - window, project)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    terminal().print(render(data, args.since))
    return EXIT_OK


def render(data: dict[str, Any], window: str) -> Any:
    from rich.table import Table

    from signalsloop.cli.view import plain

    table = Table(title=f"Notifications, last {window}" + (f" · project {data['project']}" if data["project"] else ""),
                  title_justify="left")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for outcome, n in sorted(data["outcomes"].items()):
        table.add_row(outcome, str(n))
    for reason, n in data["suppressed_by_reason"].items():
        table.add_row(plain(f"  suppressed: {reason}"), str(n))
    table.add_row("digests sent", str(data["digests_sent"]))
    fb = data["feedback"]
    share = "no ratings yet" if fb["useful_share"] is None else f"{fb['useful_share']:.0%}"
    table.add_row("marked useful", f"{share} ({fb['useful']} useful, {fb['not_useful']} not, "
                                   f"{fb['messages_rated']} messages rated)")
    return table
