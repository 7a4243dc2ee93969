"""``signalsloop notifications report [--since 7d] [--project P] [--json]``:
over a window, how many notifications were sent, digested, rate-limited or
suppressed (by reason), and the share people marked useful, so "90% of alerts
are actionable" is measured, not assumed."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    import psycopg

# Outcomes as the report groups them (notifications.status -> outcome).
OUTCOMES = {"sent": "sent", "unconfigured": "sent_unconfigured", "unknown": "sent_unknown",
            "digested": "digested", "queued": "waiting_for_digest", "rate_limited": "rate_limited",
            "suppressed": "suppressed", "recorded": "recorded", "failed": "failed", "sending": "sending"}


def report(conn: psycopg.Connection[Any], since: datetime, project: UUID | None = None) -> dict[str, Any]:
    from signalsloop.operations.query import query

    where = "n.created_at >= %s and (%s::uuid is null or n.project_id = %s::uuid)"
    params = (since, project, project)
    by_status = query(conn, f"select n.status, count(*) as n from notifications n where {where} "
                      "group by n.status order by n.status", params)
    reasons = query(conn, f"select coalesce(n.reason, 'unspecified') as reason, count(*) as n from notifications n "
                    f"where {where} and n.status = 'suppressed' group by 1 order by 2 desc, 1", params)
    digests = query(conn, f"select count(*) as n from notifications n where {where} "
                    "and n.dedupe_key like 'digest:%%' and n.status in ('sent', 'unconfigured', 'unknown')", params)
    verdicts = query(conn, f"select f.verdict, count(*) as n, count(distinct f.notification_id) as messages "
                     f"from notification_feedback f join notifications n on n.id = f.notification_id "
                     f"where {where} group by f.verdict", params)
    counts = {OUTCOMES.get(r["status"], r["status"]): int(r["n"]) for r in by_status}
    marked = {r["verdict"]: int(r["n"]) for r in verdicts}
    total_votes = sum(marked.values())
    return {
        "since": since.isoformat(), "project": str(project) if project else None,
        "total": sum(counts.values()), "outcomes": counts,
        "suppressed_by_reason": {r["reason"]: int(r["n"]) for r in reasons},
        "digests_sent": int(digests[0]["n"]),
        "feedback": {"useful": marked.get("useful", 0), "not_useful": marked.get("not_useful", 0),
                     "messages_rated": sum(int(r["messages"]) for r in verdicts),
                     "useful_share": round(marked.get("useful", 0) / total_votes, 3) if total_votes else None},
    }


def register(sub: Any) -> None:
    from signalsloop.cli import _usage

    group = sub.add_parser("notifications", help="what notify sent, digested or held back, and what was useful")
    group.set_defaults(handler=_usage(group))
    commands = group.add_subparsers(title="notifications commands", metavar="<cmd>")
    rep = commands.add_parser("report", help="outcomes by reason and the share marked useful, over a window")
    rep.add_argument("--since", default="7d", help="window, e.g. 24h or 7d (default 7d)")
    rep.add_argument("--project", help="only this project id")
    rep.add_argument("--json", action="store_true", help="machine-readable output")
    rep.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    import json
    from datetime import UTC

    from signalsloop.cli import _out, database_url
    from signalsloop.db import connect
    from signalsloop.operations.query import parse_duration, parse_uuid

    window: timedelta = parse_duration(args.since)
    project = parse_uuid(args.project, "project id") if args.project else None
    with connect(database_url()) as conn:
        data = report(conn, datetime.now(UTC) - window, project)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    _out().print(render(data, args.since))
    return 0


def render(data: dict[str, Any], window: str) -> Any:
    from rich.table import Table

    from signalsloop.cli_view import plain

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
