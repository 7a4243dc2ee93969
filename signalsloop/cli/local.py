"""Commands that run the system on this machine: ``relay``, ``dev``, ``demo``
and ``bench``. Each hands its arguments to the module that does the work,
imported only when the command runs."""

from __future__ import annotations

import argparse
import importlib
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
