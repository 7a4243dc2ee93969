"""Agent health and the plan's success metrics, computed from the ledger over
a window by SQL functions called as the signed-in person (a member's figures
cover their projects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from functions.dashboard.db import Identity
from functions.dashboard.queries import revive
from functions.dashboard.reads import DashboardReads


def agent_health(reads: DashboardReads, who: Identity, window_s: float) -> dict[str, Any]:
    """Per agent over the window: deliveries by status, success, execution
    time percentiles, lag now, failures, dead letters, circuit, unanswered
    rings (``stats``); the oldest pending age at each minute of the last hour
    (``lag_history``); ``alerts``; ``doorbell_errors`` (rung, never claimed)."""
    return dict(revive(reads.call(who, "dashboard_agent_health", {"p_window_s": window_s})))


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    detail: str = ""

    def shown(self) -> str:
        if self.value is None:
            return "no data"
        return f"{self.value:.0f} {self.unit}" if self.unit in ("ms", "s") else f"{self.value:g} {self.unit}"


def success_metrics(reads: DashboardReads, who: Identity, window_s: float,
                    dashboard_p95_ms: float | None) -> list[Metric]:
    return metrics_from(reads.call(who, "dashboard_success_metrics", {"p_window_s": window_s}), dashboard_p95_ms)


def metrics_from(raw: dict[str, Any], dashboard_p95_ms: float | None) -> list[Metric]:
    """The plan's targets, met or not, from the figures the SQL computed."""
    react, work, fan, themes, dup = (raw.get(k) or {} for k in ("react", "work", "fan", "themes", "dup"))
    useful = _useful(raw.get("useful") or {})
    share = (themes["specced"] / themes["high"] * 100) if themes.get("high") else None
    return [
        _ms("Event processing latency (claim to complete), p95", work.get("p95"), 100),
        _ms("Agent reaction time (event commit to claim), p95", react.get("p95"), 500),
        Metric("Agents processing one event (peak)", float(fan["peak"]) if fan.get("peak") else None, "agents",
               ">= 5", None if not fan.get("peak") else fan["peak"] >= 5, f"median {fan.get('p50') or 0:g}"),
        Metric("High-volume themes with a spec", share, "%", ">= 80 %", None if share is None else share >= 80,
               f"{themes.get('specced', 0)} of {themes.get('high', 0)} themes over their threshold"),
        Metric("Duplicate detection delay (post to duplicate.found), p95",
               None if dup.get("p95") is None else float(dup["p95"]), "ms", "< 1000 ms",
               None if dup.get("p95") is None else dup["p95"] < 1000, f"{dup.get('n', 0)} duplicates"),
        useful,
        _ms("Dashboard update latency (commit to page), p95", dashboard_p95_ms, 1000),
    ]


def _ms(name: str, value: Any, target: float) -> Metric:
    if value is None:
        return Metric(name, None, "ms", f"< {target:.0f} ms", None)
    return Metric(name, float(value), "ms", f"< {target:.0f} ms", float(value) < target)


def _useful(row: dict[str, Any]) -> Metric:
    name = "Notifications marked useful"
    if not row.get("n"):
        return Metric(name, None, "%", ">= 90 %", None, "no votes in the window")
    share = row["useful"] / row["n"] * 100
    return Metric(name, round(share, 1), "%", ">= 90 %", share >= 90, f"{row['n']} votes")
