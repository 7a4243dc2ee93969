"""How the CLI shows events, chains and agent health in a terminal (rich)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from rich.tree import Tree

# C0 controls but tab and newline, DEL, C1: ESC sequences recolour, retitle or clear a terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: object) -> Text:
    """Stored text for a terminal cell: never read as rich markup (a reason
    such as ``[/b]`` raised MarkupError), control characters shown escaped
    (``\x1b``), never sent to the terminal."""
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)))


_TYPE_STYLES = {"feedback": "bright_blue", "sentiment": "magenta", "theme": "yellow", "duplicate": "cyan",
                "priority": "bright_red", "spec": "green", "notification": "bright_black"}


def event_line(row: dict[str, Any]) -> Text:
    """time  type  project  aggregate  depth  producer  payload  id."""
    from signalsloop.operations.query import short

    prefix = row["type"].split(".", 1)[0]
    payload = json.dumps(row["payload"], ensure_ascii=False, default=str)
    payload = payload if len(payload) <= 80 else payload[:79] + "…"
    return Text.assemble(
        (row["created_at"].astimezone().strftime("%H:%M:%S.%f")[:-3], "dim"), "  ",
        (f"{row['type']:<28}", _TYPE_STYLES.get(prefix, "white")), " ",
        (f"project {short(row['project_id'])}", "cyan"), " ",
        (f"{row['aggregate_type']}/{short(row['aggregate_id'])}", "blue"), " ",
        (f"d{row['depth']}", "yellow"), " ",
        (f"{row['producer'] or '?':<12}", "green"), " ",
        payload, "  ", (str(row["id"]), "dim"),
    )


_STATUS_STYLES = {"succeeded": "green", "failed": "yellow", "dead": "bold red", "pending": "cyan",
                  "running": "blue", "parked": "magenta", "blocked": "red"}


def add_event(parent: Tree, event: dict[str, Any]) -> None:
    prefix = event["type"].split(".", 1)[0]
    node = parent.add(Text.assemble(
        (event["type"], f"bold {_TYPE_STYLES.get(prefix, 'white')}"), f"  by {event['producer'] or '?'}",
        f"  depth {event['depth']}  ", (event["created_at"].astimezone().strftime("%H:%M:%S.%f")[:-3], "dim"),
        "  ", (str(event["id"]), "dim")))
    for d in event["deliveries"]:
        duration = "-" if d["duration_ms"] is None else f"{d['duration_ms']:.0f} ms"
        line = Text.assemble(f"{d['agent']}: ", (d["status"], _STATUS_STYLES.get(d["status"], "white")),
                             f", attempts {d['attempts']}/{d['max_attempts']}, {duration}")
        if d["last_error"] and d["status"] != "succeeded":
            line.append(f"  {d['last_error'][:100]}", style="dim red")
        node.add(line)
    for child in event["children"]:
        add_event(node, child)


def health_table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="agent health", header_style="bold")
    for name in ("agent", "state", "total", "ok", "failed", "dead", "pending", "running", "parked", "blocked",
                 "success", "p50 ms", "p95 ms", "oldest pending", "ring errors", "circuit"):
        table.add_column(name, justify="left" if name in ("agent", "state", "circuit") else "right")
    for r in rows:
        state = ("on" if r["enabled"] else "off") + _mode(r)
        circuit = r["circuit_state"] + (f" ({r['consecutive_failures']} fails)" if r["consecutive_failures"] else "")
        table.add_row(
            r["agent"], state, str(r["total"]), str(r["succeeded"]), str(r["failed"]),
            Text(str(r["dead"]), style="bold red" if r["dead"] else ""), str(r["pending"]), str(r["running"]),
            str(r["parked"]), str(r["blocked"]),
            "-" if r["success_rate"] is None else f"{r['success_rate']:.0%}",
            _num(r["p50_ms"]), _num(r["p95_ms"]),
            "-" if r["oldest_pending_s"] is None else f"{r['oldest_pending_s']:.0f}s",
            _ring_errors(r),
            Text(circuit, style="green" if r["circuit_state"] == "closed" else "bold red"))
    return table


def _mode(row: dict[str, Any]) -> str:
    if row["mode"] == "live":
        return "" if row.get("rollout_percent", 100) == 100 else f" (live {row['rollout_percent']}%)"
    return f" ({row['mode']})"


def _ring_errors(row: dict[str, Any]) -> Text:
    """Waiting deliveries whose rings were refused or unanswered, with the last reason."""
    if not row.get("ring_errors"):
        return Text("0")
    return Text(f"{row['ring_errors']} ({(row.get('last_ring_error') or '')[:40]})", style="bold red")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
