"""``signalsloop``: the operator's command line.

Queries live in :mod:`signalsloop.operations.events` and :mod:`signalsloop.operations.agents`
(plain data, tested without a terminal); this module parses arguments and
formats. Heavy modules are imported inside the handlers so ``--help`` is fast.
Every :class:`~shared.errors.SignalsLoopError` ends as one red ``error:`` line
on stderr and exit code 2; anything unexpected is exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from shared.errors import BadRequest, ConfigurationError, SignalsLoopError
from shared.text import is_valid_unicode
from signalsloop.cli_view import add_event, event_line, health_table

EXIT_OK, EXIT_UNEXPECTED, EXIT_ERROR = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool its reader left
Handler = Callable[[argparse.Namespace], int]

# Command groups kept in their own modules, each with ``register(subparsers)``.
# Such a module imports its heavy dependencies inside its handlers.
COMMAND_MODULES: tuple[str, ...] = (
    "signalsloop.cli_rollout",
    "signalsloop.operations.doctor_command",
    "signalsloop.operations.clock",
    "signalsloop.operations.notifications",
    "signalsloop.operations.dashboard",
    "signalsloop.operations.lifecycle_cli",
    "signalsloop.operations.feedback_cli",
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
    if (problem := _undecodable(args) or _empty(args)) is not None:
        _error(problem)
        return EXIT_ERROR
    try:
        return int(handler(args) or EXIT_OK)
    except SignalsLoopError as exc:
        _error(exc.message)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        Console(stderr=True).print_exception()
        _error(f"unexpected {type(exc).__name__}: {exc}")
        return EXIT_UNEXPECTED


def _undecodable(args: argparse.Namespace) -> str | None:
    """Python keeps argument bytes that are not UTF-8 as lone surrogates, which
    PostgreSQL's driver cannot encode (a traceback deep in a query): name the
    argument instead."""
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not is_valid_unicode(item):
                return f"the value of {name.replace('_', '-')} is not valid UTF-8"
    return None


#: Options where an empty string is a value, not a slip.
EMPTY_ALLOWED = frozenset({"body"})


def _empty(args: argparse.Namespace) -> str | None:
    """An empty value is refused, not read as the option left out: ``events
    replay --dead --project "$PROJECT"`` with the variable unset replayed every
    project's dead letters, and ``dashboard --host ""`` listened everywhere."""
    for name, value in vars(args).items():
        if name in EMPTY_ALLOWED:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not item.strip():
                label = _LABELS.get(name, name.replace("_", "-"))
                return f"the value of {label} is empty: leave the option out instead"
    return None


_LABELS = {"start": "--from", "end": "--to"}


def _error(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(Text(f"error: {message}", style="bold red"), highlight=False)


def _out() -> Console:
    return Console(soft_wrap=True, highlight=False)


# --- parser -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signalsloop", description="Operate the SignalsLoop event backbone.")
    sub = parser.add_subparsers(title="commands", metavar="<command>")

    db_parser = sub.add_parser("db", help="database administration")
    db_parser.set_defaults(handler=_usage(db_parser))
    db = db_parser.add_subparsers(title="db commands", metavar="<cmd>")
    db.add_parser("migrate", help="apply pending migrations (DATABASE_URL, else the embedded database)") \
        .set_defaults(handler=cmd_migrate)

    _add_events(sub.add_parser("events", help="watch, inject and inspect events"))
    _add_replay(sub)
    agents = sub.add_parser("agents", help="health of every agent")
    agents.add_argument("--since", help="only deliveries created in this window (e.g. 1h)")
    agents.add_argument("--json", action="store_true", help="machine-readable output")
    agents.set_defaults(handler=cmd_agents)

    _add_stack_commands(sub)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def _usage(parser: argparse.ArgumentParser) -> Handler:
    """A command group run without its sub-command prints its own help."""

    def run(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return EXIT_ERROR

    return run


def _add_events(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=_usage(parser))
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


def _add_stack_commands(sub: Any) -> None:
    relay = sub.add_parser("relay", help="local doorbell: LISTEN and POST deliveries to the agents")
    relay.add_argument("--sweep-interval", type=float, default=1.0)
    relay.add_argument("--concurrency", type=int, default=None,
                       help="in-flight requests per agent (default: agents.max_concurrency)")
    relay.set_defaults(handler=_delegate("signalsloop.local.relay", "main"))
    dev = sub.add_parser("dev", help="the whole stack on this machine")
    dev.add_argument("--base-port", type=int, default=8081)
    dev.add_argument("--listen", default="127.0.0.1", help="address the functions listen on")
    dev.add_argument("--advertise-host", default=None,
                     help="host name registered in agents.endpoint_url (e.g. host.docker.internal for pg_net "
                          "in a local Supabase); defaults to --listen")
    dev.set_defaults(handler=_delegate("signalsloop.local.stack", "main_dev"))
    demo = sub.add_parser("demo", help="feedback in, agents react, show the chain")
    demo.add_argument("--json", action="store_true")
    demo.add_argument("--keep", action="store_true", help="keep the stack and its dashboard up until Ctrl-C")
    demo.set_defaults(handler=_delegate("signalsloop.local.demo", "main"))
    bench = sub.add_parser("bench", help="throughput and latency of the backbone")
    bench.add_argument("--events", type=int, default=300)
    bench.add_argument("--rate", type=float, default=10.0, help="feedback posts per second in the steady phase")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--doorbell", choices=("relay", "pg_net"), default="relay",
                       help="relay (default), or pg_net: the real extension where installed, else its stand-in")
    bench.add_argument("--dashboard", action="store_true",
                       help="measure the dashboard in headless Chromium instead (commit to screen, 1M-event load)")
    bench.add_argument("--posts", type=int, default=100, help="--dashboard: posts timed from commit to screen")
    bench.add_argument("--dashboard-events", type=int, default=1_000_000, help="--dashboard: events for the load test")
    bench.add_argument("--history", type=int, default=0,
                       help="first load this many historical events and compare latency with the empty database")
    bench.set_defaults(handler=_delegate("signalsloop.benchmarks.bench", "main"))
    analyze = sub.add_parser("analyze", help="JSON lines on stdin: sentiment, similarity or themes")
    analyze.add_argument("kind", choices=("sentiment", "similarity", "themes"))
    analyze.add_argument("--top", type=int, default=5, help="neighbours / themes to report (default 5)")
    analyze.set_defaults(handler=cmd_analyze)


def _delegate(module: str, function: str) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            target = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise ConfigurationError(f"{module} is not available in this installation") from None
        return int(getattr(target, function)(args) or EXIT_OK)

    return run


# --- database -----------------------------------------------------------------------


def database_url() -> str:
    """DATABASE_URL, or the embedded PostgreSQL under .signalsloop/pgdata."""
    from shared.settings import load_settings

    url = load_settings().database_url
    if url:
        return url
    from signalsloop.db import start_embedded

    return start_embedded()


def cmd_migrate(args: argparse.Namespace) -> int:
    from signalsloop.db import check_url, migrate, migrations

    url = database_url()
    check_url(url)
    applied = set(migrate(url))
    out = _out()
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
    out = _out()
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
    _out().print(str(event_id))
    return EXIT_OK


def cmd_chain(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.events import chain, nest

    with connect(database_url()) as conn:
        events = chain(conn, args.correlation_id)
    tree = Tree(Text(f"chain {events[0]['correlation_id']} · {len(events)} events", style="bold"))
    for root in nest(events):
        add_event(tree, root)
    _out().print(tree)
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
    _out().print(f"replayed {count} deliver{'y' if count == 1 else 'ies'}")
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
    out = _out()
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


if __name__ == "__main__":
    sys.exit(main())
