"""Commands that run the system on this machine: ``relay``, ``dev``, ``demo``
and ``bench``. Each imports the module that does the work only when it runs;
``dev`` is here, the others hand their arguments on."""

from __future__ import annotations

import argparse
import importlib
import signal
import time
from typing import Any

from shared.errors import ConfigurationError
from signalsloop.cli.common import EXIT_OK, Handler


def register(sub: Any) -> None:
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
    dev.set_defaults(handler=cmd_dev)
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


def masked(url: str) -> str:
    """A connection URL with its password hidden, for printing."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        return url
    return url.replace(f":{password}@", ":***@") if password else url


def _stop_on_signals() -> None:
    """SIGTERM (``kill PID``) stops the stack as Ctrl-C does, and so does
    SIGINT when the shell that started ``signalsloop dev &`` ignores it for
    background jobs: functions, relay, dashboard and PostgreSQL go with it."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def cmd_dev(args: Any) -> int:
    """``signalsloop dev``: run everything until Ctrl-C."""
    from rich.console import Console
    from rich.table import Table

    from shared.settings import load_settings
    from signalsloop import ROOT
    from signalsloop.db import stop_embedded
    from signalsloop.local.stack import Stack

    console = Console()
    _stop_on_signals()
    settings = load_settings()
    secret = settings.signalsloop_secret.get_secret_value() if settings.signalsloop_secret else None
    stack = Stack(database_url=settings.database_url, base_port=args.base_port,
                  log_dir=ROOT / ".signalsloop" / "logs", listen_host=args.listen,
                  advertise_host=args.advertise_host or args.listen)
    if secret:
        stack.secret = secret
    with console.status("starting PostgreSQL, migrating, starting functions and the relay..."):
        stack.start()
    table = Table(title="SignalsLoop dev stack")
    table.add_column("what")
    table.add_column("where")
    table.add_row("postgres", masked(stack.database_url or ""))
    for fn in stack.functions.values():
        table.add_row(f"function {fn.name}", fn.url)
    table.add_row("relay", f"LISTEN signalsloop_doorbell, sweep every {stack.sweep_interval}s")
    table.add_row("dashboard", stack.start_dashboard())
    table.add_row("logs", str(stack.log_dir))
    table.add_row("secret", "from SIGNALSLOOP_SECRET" if secret else "generated for this run (set SIGNALSLOOP_SECRET)")
    table.add_row("slack_actions", "verifies callbacks with SLACK_SIGNING_SECRET" if settings.slack_signing_secret
                  else "refuses every callback until SLACK_SIGNING_SECRET is set")
    console.print(table)
    shown = masked(stack.database_url or "")
    console.print(f"Other terminals: export DATABASE_URL='{shown}' then signalsloop events tail, "
                  "signalsloop agents, ... Ctrl-C stops everything.", soft_wrap=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping...")
    finally:
        stack.stop()
        stop_embedded()
        console.print("stopped: functions, relay" + ("" if settings.database_url else " and PostgreSQL"))
    return EXIT_OK
