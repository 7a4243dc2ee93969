"""``signalsloop rollout``: the plan's cutover, per agent: shadow, compare,
live 25 -> 100 %, rollback. Registered through ``COMMAND_MODULES``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from shared.errors import BadRequest
from signalsloop.cli.common import EXIT_OK, database_url, terminal
from signalsloop.cli.view import plain


def register(sub: Any) -> None:
    parser = sub.add_parser("rollout", help="gradual cutover per agent: off, shadow, live with a percentage")
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])
    cmds = parser.add_subparsers(title="rollout commands", metavar="<cmd>")
    status = cmds.add_parser("status", help="every agent's mode and percentage, and its last day")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)
    set_ = cmds.add_parser("set", help="set an agent's mode: off, shadow, or live [--percent N]")
    set_.add_argument("agent")
    set_.add_argument("mode", choices=("off", "shadow", "live"))
    set_.add_argument("--percent", type=int, help="share of items on the event-driven path (live; default 100)")
    set_.add_argument("--reason", help="recorded in rollout_changes")
    set_.add_argument("--by", help="who (default: the database user)")
    set_.set_defaults(handler=cmd_set)
    back = cmds.add_parser("rollback", help="every live agent (or one) back to shadow, at once")
    back.add_argument("agent", nargs="?")
    back.add_argument("--reason", help="recorded in rollout_changes")
    back.add_argument("--by", help="who (default: the database user)")
    back.set_defaults(handler=cmd_rollback)
    history = cmds.add_parser("history", help="the recorded changes (rollout_changes), newest first")
    history.add_argument("agent", nargs="?")
    history.add_argument("--limit", type=int, default=20, help="changes to list (default 20)")
    history.add_argument("--json", action="store_true")
    history.set_defaults(handler=cmd_history)
    comp = cmds.add_parser("compare", help="shadow decisions beside what is live for the same items")
    comp.add_argument("--agent", required=True)
    comp.add_argument("--project", help="only this project id")
    comp.add_argument("--since", default="7d", help="window (default 7d)")
    comp.add_argument("--limit", type=int, default=20, help="disagreeing items to list (default 20)")
    comp.add_argument("--json", action="store_true")
    comp.set_defaults(handler=cmd_compare)
    legacy = cmds.add_parser("legacy", help="local walkthrough: write sentiment as the pre-event code did")
    legacy.add_argument("--since", default="1d", help="posts created in this window (default 1d)")
    legacy.set_defaults(handler=cmd_legacy)


def cmd_status(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.rollout import rollout_status

    with connect(database_url()) as conn:
        rows = rollout_status(conn)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return EXIT_OK
    table = Table(title="rollout", header_style="bold")
    for name in ("agent", "mode", "percent", "live runs (1d)", "shadow runs (1d)", "waiting", "dead", "changed"):
        table.add_column(name)
    for r in rows:
        table.add_row(r["agent"], r["mode"] + ("" if r["enabled"] else " (disabled)"),
                      f"{r['rollout_percent']}%" if r["mode"] == "live" else "-", str(r["live_runs"]),
                      str(r["shadow_runs"]), str(r["waiting"]), str(r["dead"]), str(r["last_change"] or "-"))
    terminal(highlight=True).print(table)
    return EXIT_OK


def cmd_set(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.rollout import set_rollout

    with connect(database_url()) as conn:
        change = set_rollout(conn, args.agent, args.mode, args.percent, by=args.by, reason=args.reason)
    print(_change_line(change))
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.rollout import rollback

    with connect(database_url()) as conn:
        changed = rollback(conn, args.agent, by=args.by, reason=args.reason)
    for change in changed:
        print(_change_line(change))
    if not changed:
        print(f"nothing to roll back: {args.agent} is not live" if args.agent
              else "nothing to roll back: no agent is live")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.rollout import changes

    if args.limit < 1:
        raise BadRequest("--limit must be 1 or more")
    with connect(database_url()) as conn:
        rows = changes(conn, args.agent, args.limit)
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return EXIT_OK
    table = Table(title="rollout changes", header_style="bold")
    for name in ("when", "who", "agent", "from", "to", "why"):
        table.add_column(name)
    for r in rows:
        table.add_row(str(r["changed_at"])[:19], plain(r["changed_by"]), plain(r["agent"]),
                      _side(r["from_mode"], r["from_percent"]), _side(r["to_mode"], r["to_percent"]),
                      plain(r["reason"] or "-"))
    terminal(highlight=True).print(table)
    return EXIT_OK


def _side(mode: str, percent: int) -> str:
    """``live 25%``, ``shadow``: a percentage means something for live only."""
    return f"{mode} {percent}%" if mode == "live" else mode


def _change_line(c: dict[str, Any]) -> str:
    before, after = _side(c["from_mode"], c["from_percent"]), _side(c["to_mode"], c["to_percent"])
    if before == after:
        return f"{c['agent']}: {after}, unchanged (recorded, event {c['event_id']})"
    return f"{c['agent']}: {before} -> {after} (event {c['event_id']})"


def cmd_compare(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.compare import compare
    from signalsloop.operations.query import parse_duration, parse_uuid, query

    if args.limit < 0:
        raise BadRequest("--limit must be 0 or more")
    project = parse_uuid(args.project, "project id") if args.project else None
    since = parse_duration(args.since)
    with connect(database_url()) as conn:
        if not query(conn, "select 1 from public.agents where name = %s", (args.agent,)):
            raise BadRequest(f"unknown agent {args.agent!r}")
        report = compare(conn, args.agent, project, since)
    report["disagreeing"] = len(report["disagreements"])
    report["disagreements"] = report["disagreements"][: args.limit]
    if args.json:
        print(json.dumps(report, default=str, indent=2))
        return EXIT_OK
    console = terminal(highlight=True)
    figures = {k: v for k, v in report.items() if k not in ("disagreements", "agent", "kind")}
    kind = "" if report["kind"] == report["agent"] else f" ({report['kind']})"
    console.print(f"[bold]{report['agent']}[/bold] shadow vs live{kind}: "
                  + ", ".join(f"{k} {_fmt(v)}" for k, v in figures.items()))
    if not report["shadow_items"]:
        console.print(f"no shadow decisions of {args.agent} in the last {args.since}: "
                      f"signalsloop rollout set {args.agent} shadow, then let feedback come in")
    if report["disagreements"]:
        shown = len(report["disagreements"])
        title = f"disagreements ({shown} of {report['disagreeing']}; --limit for more)" \
            if shown < report["disagreeing"] else "disagreements"
        table = Table(title=title, header_style="bold")
        keys = list(report["disagreements"][0])
        for key in keys:
            table.add_column(key)
        for row in report["disagreements"]:
            table.add_row(*[plain(row.get(k)) for k in keys])
        console.print(table)
    return EXIT_OK


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def cmd_legacy(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.legacy import write_legacy_sentiment
    from signalsloop.operations.query import parse_duration

    with connect(database_url()) as conn:
        n = write_legacy_sentiment(conn, parse_duration(args.since))
    print(f"legacy path wrote sentiment for {n} posts")
    return EXIT_OK
