"""Commands on the ledger: ``db migrate``, ``events tail|publish|chain``,
``replay``, ``agents`` and ``analyze``. The queries live in
:mod:`signalsloop.operations.events` and :mod:`signalsloop.operations.agents`
(plain data, tested without a terminal); these handlers parse and format."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from shared.errors import BadRequest
from signalsloop.cli.common import EXIT_OK, database_url, group_usage, terminal
from signalsloop.cli.view import add_event, event_line, health_table


def register(sub: Any) -> None:
    db_parser = sub.add_parser("db", help="database administration")
    db_parser.set_defaults(handler=group_usage(db_parser))
    db = db_parser.add_subparsers(title="db commands", metavar="<cmd>")
    db.add_parser("migrate", help="apply pending migrations (DATABASE_URL, else the embedded database)") \
        .set_defaults(handler=cmd_migrate)

    _add_events(sub.add_parser("events", help="watch, inject and inspect events"))
    _add_replay(sub)
    agents = sub.add_parser("agents", help="health of every agent")
    agents.add_argument("--since", help="only deliveries created in this window (e.g. 1h)")
    agents.add_argument("--json", action="store_true", help="machine-readable output")
    agents.set_defaults(handler=cmd_agents)
    analyze = sub.add_parser("analyze", help="JSON lines on stdin: sentiment, similarity or themes")
    analyze.add_argument("kind", choices=("sentiment", "similarity", "themes"))
    analyze.add_argument("--top", type=int, default=5, help="neighbours / themes to report (default 5)")
    analyze.set_defaults(handler=cmd_analyze)


def _add_events(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=group_usage(parser))
    sub = parser.add_subparsers(title="events commands", metavar="<cmd>")
    tail = sub.add_parser("tail", help="print recent events, then follow new ones (Ctrl-C to stop)")
    tail.add_argument("--type", action="append", help="only this event type (repeatable)")
    tail.add_argument("--project", help="only this project id")
    tail.add_argument("--since", help="start this long ago (10m) or at this ISO time; default: the last 20 events")
    tail.add_argument("--limit", type=int, help="stop after printing this many events")
    tail.add_argument("--once", action="store_true", help="print what matches now and exit")
    tail.add_argument("--interval", type=float, default=0.5, help="seconds between polls (default 0.5)")
    tail.set_defaults(handler=cmd_tail)

    pub = sub.add_parser("publish", help="inject a root event (producer 'cli') and print its id")
    pub.add_argument("type", help="event type, e.g. feedback.created")
    pub.add_argument("--project", required=True, help="project id (uuid)")
    pub.add_argument("--payload", default="{}", help="JSON object")
    pub.add_argument("--aggregate-type", help="default: the type's prefix (feedback for feedback.created)")
    pub.add_argument("--aggregate-id", help="default: a new uuid")
    pub.add_argument("--force", action="store_true", help="allow a type outside the catalogue or an unknown project")
    pub.set_defaults(handler=cmd_publish)

    chain = sub.add_parser("chain", help="an event chain as a tree, with each event's deliveries")
    chain.add_argument("correlation_id", help="the chain's correlation id (or any event id in it)")
    chain.set_defaults(handler=cmd_chain)


def _add_replay(sub: Any) -> None:
    replay = sub.add_parser("replay", help="send deliveries back to pending")
    replay.add_argument("--event", help="one event's deliveries")
    replay.add_argument("--dead", action="store_true", help="dead-lettered deliveries")
    replay.add_argument("--agent", help="only this agent")
    replay.add_argument("--type", help="only this event type")
    replay.add_argument("--project", help="only this project id")
    replay.add_argument("--from", dest="start", help="events created at or after (ISO time or 10m ago)")
    replay.add_argument("--to", dest="end", help="events created before (ISO time or 10m ago)")
    replay.set_defaults(handler=cmd_replay)


def cmd_migrate(args: argparse.Namespace) -> int:
    from signalsloop.db import check_url, migrate, migrations

    url = database_url()
    check_url(url)
    applied = set(migrate(url))
    out = terminal()
    if not applied:
        out.print("database is up to date")
    for m in migrations():
        if m.version in applied:
            out.print(Text.assemble(("applied ", "green"), f"{m.version}_{m.name}"))
    return EXIT_OK


# --- events ---------------------------------------------------------------------------


def cmd_tail(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.events import EventFilter, EventTail
    from signalsloop.operations.query import parse_time, parse_uuid

    flt = EventFilter(types=tuple(args.type or ()),
                      project=parse_uuid(args.project, "project id") if args.project else None,
                      since=parse_time(args.since) if args.since else None)
    limit: int | None = args.limit
    if limit is not None and limit < 1:
        raise BadRequest(f"--limit must be a positive number of events, not {limit}")
    if not 0 < args.interval < 3600:
        raise BadRequest(f"--interval must be between 0 and 3600 seconds, not {args.interval}")
    out = terminal()
    with connect(database_url()) as conn:
        tail = EventTail(conn, flt)
        rows = tail.backlog(limit or (10_000 if flt.since else 20))
        printed = _print_events(out, rows)
        if args.once or (limit is not None and printed >= limit):
            return EXIT_OK
        try:
            while limit is None or printed < limit:
                time.sleep(args.interval)
                rows = tail.poll()
                printed += _print_events(out, rows[: None if limit is None else limit - printed])
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _print_events(out: Console, rows: Sequence[dict[str, Any]]) -> int:
    for row in rows:
        out.print(event_line(row))
    return len(rows)


def cmd_publish(args: argparse.Namespace) -> int:
    from shared.postgres_store import PostgresStore
    from signalsloop.db import connect
    from signalsloop.operations.events import build_root_event, publish_event

    event = build_root_event(args.type, args.project, args.payload, aggregate_type=args.aggregate_type,
                             aggregate_id=args.aggregate_id, force=args.force)
    url = database_url()
    with connect(url) as conn:
        store = PostgresStore(url, max_size=1)
        try:
            event_id = publish_event(conn, store, event, force=args.force)
        finally:
            store.close()
    terminal().print(str(event_id))
    return EXIT_OK


def cmd_chain(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.events import chain, nest

    with connect(database_url()) as conn:
        events = chain(conn, args.correlation_id)
    tree = Tree(Text(f"chain {events[0]['correlation_id']} · {len(events)} events", style="bold"))
    for root in nest(events):
        add_event(tree, root)
    terminal().print(tree)
    return EXIT_OK


# --- replay, agents, analyze ------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.events import ReplayRequest, replay
    from signalsloop.operations.query import parse_time, parse_uuid

    req = ReplayRequest(
        event=parse_uuid(args.event, "event id") if args.event else None, dead=args.dead, agent=args.agent,
        type=args.type, project=parse_uuid(args.project, "project id") if args.project else None,
        start=parse_time(args.start) if args.start else None, end=parse_time(args.end) if args.end else None)
    with connect(database_url()) as conn:
        count = replay(conn, req)
    terminal().print(f"replayed {count} deliver{'y' if count == 1 else 'ies'}")
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.agents import agent_health, rate_limit_hits
    from signalsloop.operations.query import parse_duration

    since = parse_duration(args.since) if args.since else None
    with connect(database_url()) as conn:
        rows = agent_health(conn, since)
        hits = rate_limit_hits(conn, since)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    out = terminal()
    out.print(health_table(rows))
    for hit in hits:
        out.print(Text(f"rate limit: {hit['held_back']} {hit['event_type']} events held back for user "
                       f"{hit['user_id']} in project {hit['project_id']} (last {hit['last_at']:%Y-%m-%d %H:%M:%S})",
                       style="yellow"))
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    from shared.analyzers import build_analyzer
    from shared.settings import load_settings
    from signalsloop.operations.analyze import run_analyze

    analyzer = build_analyzer(load_settings())
    return run_analyze(args.kind, analyzer, sys.stdin.buffer, sys.stdout, sys.stderr, top=args.top)
