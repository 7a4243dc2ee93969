"""The ``signalsloop doctor`` command: fetch ``public.doctor_report()`` from a
DATABASE_URL (psycopg) or a Supabase project (supabase-py RPC with the
service-role key), probe each agent's endpoint, print one line per check.
Exit 0 only when every check holds."""

from __future__ import annotations

import argparse
import json
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError, StoreError
from signalsloop.cli.common import EXIT_OK, database_url, terminal
from signalsloop.operations.doctor import FAIL, NA, OK, Check, Probe, all_hold, run_checks

if TYPE_CHECKING:
    import httpx

EXIT_FAILING = 1  # a check does not hold
MARKS = {OK: ("ok  ", "green"), FAIL: ("FAIL", "bold red"), NA: ("n/a ", "dim")}


def register(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check extensions, Vault, endpoints, the sweep and stuck deliveries")
    doctor.add_argument("--supabase-url", help="check this Supabase project over its API (default: DATABASE_URL; "
                        "env SUPABASE_URL is used when DATABASE_URL is unset); needs SUPABASE_SERVICE_ROLE_KEY")
    doctor.add_argument("--timeout", type=float, default=3.0, help="seconds per endpoint probe (default 3)")
    doctor.add_argument("--window", type=int, default=60,
                        help="minutes of pg_net responses and cron runs to look at (default 60)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(handler=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    import httpx

    from shared.settings import load_settings

    if not 0 < args.timeout <= 600:  # NaN fails this too; httpx refuses inf
        raise ConfigurationError("--timeout must be above 0 and at most 600 seconds")
    if not 1 <= args.window <= 525_600:  # a year of minutes; doctor_report's window is an integer
        raise ConfigurationError("--window must be between 1 and 525600 minutes")
    settings = load_settings()
    local = settings.signalsloop_secret.get_secret_value() if settings.signalsloop_secret else None
    report, source = fetch_report(args, settings)
    with httpx.Client() as client:  # one pool for every probe
        checks = run_checks(report, partial(http_probe, client), local_secret=local, timeout=args.timeout)
    ok = all_hold(checks)
    if args.json:
        print(json.dumps({"ok": ok, "source": source, "checks": [c.to_json() for c in checks]}, indent=2))
    else:
        print_checks(checks, source)
    return EXIT_OK if ok else EXIT_FAILING


def fetch_report(args: argparse.Namespace, settings: Any) -> tuple[dict[str, Any], str]:
    params = {"p_window_minutes": args.window, "p_include_secret": True}
    supabase_url = args.supabase_url or (settings.supabase_url if not settings.database_url else None)
    try:
        if supabase_url:
            return _from_supabase(supabase_url, settings, params), f"supabase {supabase_url}"
        return _from_database(params), "DATABASE_URL" if settings.database_url else "embedded database"
    except StoreError as exc:
        raise ConfigurationError(f"cannot read public.doctor_report(): {exc.message} (apply the migrations: "
                                 "signalsloop db migrate, or supabase db push)") from exc


def _from_supabase(url: str, settings: Any, params: dict[str, Any]) -> dict[str, Any]:
    from shared.supabase_store import SupabaseStore

    if settings.supabase_service_role_key is None:
        raise ConfigurationError("checking a Supabase project needs SUPABASE_SERVICE_ROLE_KEY")
    store = SupabaseStore(url, settings.supabase_service_role_key.get_secret_value())
    return dict(store.rpc("doctor_report", params))


def _from_database(params: dict[str, Any]) -> dict[str, Any]:
    from shared.postgres_store import PostgresStore
    from signalsloop.db import check_url

    url = database_url()
    check_url(url)
    store = PostgresStore(url, max_size=1)
    try:
        return dict(store.rpc("doctor_report", params))
    finally:
        store.close()


def http_probe(client: httpx.Client, url: str, secret: str | None, timeout: float) -> Probe:
    """POST ``{}`` as pg_net would; with the secret a SignalsLoop function
    answers 400 (accepted, but no webhook body), without it 401."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    try:
        response = client.post(url, content=b"{}", headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        return Probe(failure="timed_out", detail=str(exc))
    except httpx.ConnectError as exc:
        refused = "refused" in str(exc).lower()
        return Probe(failure="refused" if refused else "error", detail=str(exc))
    except httpx.HTTPError as exc:
        return Probe(failure="error", detail=f"{type(exc).__name__}: {exc}")
    return Probe(status=response.status_code)


def print_checks(checks: list[Check], source: str) -> None:
    from rich.text import Text

    out = terminal()
    out.print(Text(f"signalsloop doctor · {source}", style="bold"))
    for check in checks:
        mark, style = MARKS[check.status]
        line = Text.assemble((mark, style), f" {check.name}: {check.message}")
        if check.fix and check.status != OK:
            line.append(f" → fix: {check.fix}", style="yellow" if check.status == FAIL else "dim")
        out.print(line)
    failing = sum(c.status == FAIL for c in checks)
    out.print(Text(f"{failing} failing" if failing else "all checks hold", style="bold red" if failing else "green"))
