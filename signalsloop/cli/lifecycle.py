"""CLI for the data lifecycle (issue 10), added to the existing groups:

- ``signalsloop events export --before T [--after T] [--out F]`` / ``events import F [--fan-out]``
  (archiving is about events, so it sits beside ``events tail``);
- ``signalsloop db usage [--limit-mb 500] [--json]`` and ``db prune [--batch N]``
  (storage is the database's business, beside ``db migrate``).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shared.errors import BadRequest
from signalsloop.cli.common import EXIT_OK, database_url, terminal

#: A database limit beyond any plan (a billion MB); past it the figures are meaningless.
MAX_LIMIT_MB = 1_000_000_000
INT4_MAX = 2**31 - 1  # prune_retention's batch is an integer


def register(sub: Any) -> None:
    events = _group(sub, "events")
    export = events.add_parser("export", help="write events older than a time as JSON lines (gzip)")
    export.add_argument("--before", required=True, help="events created before this ISO time (or 400d = 400 days ago)")
    export.add_argument("--after", help="and at or after this one")
    export.add_argument("--out", help="file to write; .gz compresses (default events-before-<time>.jsonl.gz)")
    export.set_defaults(handler=cmd_export)
    imp = events.add_parser("import", help="insert an export's events again (existing ones are skipped)")
    imp.add_argument("file", help="a .jsonl or .jsonl.gz file written by events export")
    imp.add_argument("--fan-out", action="store_true", help="let the imported events trigger the agents again")
    imp.set_defaults(handler=cmd_import)

    db = _group(sub, "db")
    usage = db.add_parser("usage", help="bytes per table, per feedback item, and the projected size")
    usage.add_argument("--limit-mb", type=float, default=500, help="the plan's database limit (default 500)")
    usage.add_argument("--json", action="store_true", help="machine-readable output")
    usage.set_defaults(handler=cmd_usage)
    prune = db.add_parser("prune", help="apply the retention periods now (run_periodic does it every minute)")
    prune.add_argument("--batch", type=int, default=500, help="rows per batch (default 500)")
    prune.set_defaults(handler=cmd_prune)


def _group(sub: Any, name: str) -> Any:
    """The sub-command registry of an existing command group (argparse keeps
    it as the group parser's only _SubParsersAction)."""
    parser: argparse.ArgumentParser = sub.choices[name]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError(f"command group {name!r} has no sub-commands")


def cmd_export(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.archive import export_events, open_archive
    from signalsloop.operations.query import parse_time

    before = parse_time(args.before)
    after = parse_time(args.after) if args.after else None
    if after is not None and after >= before:
        raise BadRequest("--after must be earlier than --before")
    out = Path(args.out or f"events-before-{before.astimezone(UTC):%Y%m%dT%H%M%SZ}.jsonl.gz")
    try:
        with connect(database_url()) as conn, open_archive(out, "w") as sink:
            count = export_events(conn, sink, before, after)
    except OSError as exc:  # a folder, a missing folder, no permission, a full disk
        raise BadRequest(f"cannot write {out}: {exc.strerror or exc}") from None
    Console(stderr=True).print(f"exported {count} event{'' if count == 1 else 's'} to {out}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.archive import import_events, open_archive

    with connect(database_url()) as conn, open_archive(Path(args.file), "r") as source:
        result = import_events(conn, source, fan_out=args.fan_out)
    imported = f"imported {result.inserted} event{'' if result.inserted == 1 else 's'}, "
    terminal(soft_wrap=False, highlight=True).print(
        imported + f"{result.skipped} already present" + ("" if args.fan_out else " (no fan-out)"))
    return EXIT_OK


def cmd_usage(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.usage import report

    if not 0 < args.limit_mb <= MAX_LIMIT_MB:  # NaN fails this too
        raise BadRequest(f"--limit-mb must be a number above 0 and at most {MAX_LIMIT_MB:,}")
    with connect(database_url()) as conn:
        rep = report(conn, limit_mb=args.limit_mb)
    if args.json:
        print(json.dumps(rep, indent=2, default=str))
    else:
        _print_usage(rep)
    return EXIT_OK


def cmd_prune(args: argparse.Namespace) -> int:
    from signalsloop.db import connect
    from signalsloop.operations.query import query

    if not 1 <= args.batch <= INT4_MAX:
        raise BadRequest(f"--batch must be between 1 and {INT4_MAX}")
    with connect(database_url()) as conn:
        removed = query(conn, "select public.prune_retention(%s) as r", (args.batch,))[0]["r"]
    print(json.dumps(removed))
    return EXIT_OK


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1024 / 1024:,.1f} MB"


def _print_usage(rep: dict[str, Any]) -> None:
    out = terminal()
    table = Table(title=f"database {_mb(rep['database_bytes'])} of {_mb(rep['limit_bytes'])}")
    for col in ("table", "size", "rows", "rows last day", "per day", "retention"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for t in rep["tables"]:
        if t["bytes"] < 64 * 1024 and not t["rows_in_window"]:
            continue
        keep = "forever" if t["retention_days"] is None else f"{t['retention_days']:g} d"
        table.add_row(t["table"], _mb(t["bytes"]), f"{t['rows']:,}", f"{t['rows_in_window']:,}",
                      f"{t['bytes_per_day'] / 1024:,.1f} KB", keep)
    out.print(table)
    per_item = rep["bytes_per_feedback_item"]
    out.print(f"feedback items in the last day: {rep['feedback_items_in_window']:,}; "
              f"bytes per item: {'-' if per_item is None else f'{per_item:,}'}; growth {_mb(rep['bytes_per_day'])}/day")
    for mode, label in (("with_retention", "with retention"), ("without_retention", "without retention")):
        p = rep["projection"][mode]
        days = p["days_until_limit"]
        until = "not within ten years" if days is None else f"in {days:,} days"
        out.print(f"{label:>17}: 30 days {_mb(p['30d_bytes'])}, 365 days {_mb(p['365d_bytes'])}; "
                  f"limit reached {until}")
