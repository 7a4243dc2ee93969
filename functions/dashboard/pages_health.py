"""Agents (health, with charts) and the plan's success metrics."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from nicegui import ui

from functions.dashboard import health
from functions.dashboard.app import identity, server
from functions.dashboard.db import Identity
from functions.dashboard.layout import RESPONSE_TIMEOUT_S, WINDOWS, frame, query, short, when

AGENT_COLUMNS = [
    {"name": c, "label": label, "field": c, "align": "left"} for c, label in (
        ("agent", "Agent"), ("state", "Enabled / mode"), ("circuit", "Circuit"), ("deliveries", "Deliveries"),
        ("success", "Success rate"), ("p50", "p50 ms"), ("p95", "p95 ms"), ("p99", "p99 ms"), ("lag", "Lag now"),
        ("failures", "Failures"), ("dead", "Dead letters"), ("rings", "Unanswered rings"))
]


def agent_row(r: dict[str, Any]) -> dict[str, Any]:
    p = r["exec_ms"] or [None, None, None]
    rate = r["succeeded"] / r["deliveries"] * 100 if r["deliveries"] else None
    mode = f"live {r['rollout_percent']}%" if r["mode"] == "live" else r["mode"]  # the cutover (docs/cutover.md)
    return {"agent": r["agent"], "state": f"{'on' if r['enabled'] else 'off'} / {mode}",
            "circuit": r["circuit_state"] + (f" ({r['consecutive_failures']} failures)" if r["consecutive_failures"]
                                             else ""),
            "deliveries": r["deliveries"], "success": "" if rate is None else f"{rate:.1f} %",
            **{k: "" if v is None else f"{v:.0f}" for k, v in zip(("p50", "p95", "p99"), p, strict=True)},
            "lag": "" if r["lag_s"] is None else f"{float(r['lag_s']):.1f} s", "failures": r["failures"],
            "dead": r["dead"], "rings": r["unanswered_rings"]}


def charts(stats: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    active = [r for r in stats if r["deliveries"]]
    with ui.row().classes("full-width no-wrap"):
        ui.echart({
            "title": {"text": "Success rate and p95 execution time", "textStyle": {"fontSize": 13}},
            "tooltip": {}, "legend": {"top": 20}, "grid": {"top": 60},
            "xAxis": {"type": "category", "data": [r["agent"] for r in active]},
            "yAxis": [{"type": "value", "name": "%", "max": 100}, {"type": "value", "name": "ms"}],
            "series": [
                {"name": "success %", "type": "bar",
                 "data": [round(r["succeeded"] / r["deliveries"] * 100, 1) for r in active]},
                {"name": "p95 ms", "type": "line", "yAxisIndex": 1,
                 "data": [round((r["exec_ms"] or [0, 0, 0])[1] or 0) for r in active]},
            ]}).style("width: 50%; height: 18rem").props("data-chart=agents")
        series: dict[str, list[Any]] = {}
        for h in history:
            series.setdefault(h["agent"], []).append([h["t"].isoformat(), round(float(h["lag_s"]), 1)])
        ui.echart({
            "title": {"text": "Processing lag, last hour (oldest pending, s)", "textStyle": {"fontSize": 13}},
            "tooltip": {"trigger": "axis"}, "legend": {"top": 20, "type": "scroll"}, "grid": {"top": 60},
            "xAxis": {"type": "time"}, "yAxis": {"type": "value", "name": "s"},
            "series": [{"name": a, "type": "line", "showSymbol": False, "data": d} for a, d in series.items()],
        }).style("width: 50%; height: 18rem").props("data-chart=lag")


def register() -> None:
    @ui.page("/agents", response_timeout=RESPONSE_TIMEOUT_S)
    async def agents_page(request: Request, window: str = "1 hour") -> None:
        who, seconds = windowed_page(request, "Agents", "/agents", window, 3600)
        found = await query(who, health.agent_health, seconds)
        stats = found["stats"]
        charts(stats, found["lag_history"])
        ui.table(columns=AGENT_COLUMNS, rows=[agent_row(r) for r in stats], row_key="agent", pagination=0) \
            .classes("full-width").props("data-table=agents")
        side_tables(found["alerts"], found["doorbell_errors"])

    @ui.page("/metrics", response_timeout=RESPONSE_TIMEOUT_S)
    async def metrics_page(request: Request, window: str = "24 hours") -> None:
        who, seconds = windowed_page(request, "Success metrics", "/metrics", window, 86400)
        p95 = server().update_p95_ms()
        metrics = await query(who, health.success_metrics, seconds, p95)
        with ui.grid(columns=3).classes("full-width"):
            for m in metrics:
                met = "no data" if m.met is None else ("met" if m.met else "not met")
                color = {"met": "green", "not met": "red"}.get(met, "grey")
                with ui.card().props(f'data-metric="{m.name}" data-met="{met}"'):
                    ui.label(m.name).classes("text-weight-bold")
                    ui.label(m.shown()).classes("text-h5")
                    with ui.row().classes("items-center"):
                        ui.label(f"target {m.target}")
                        ui.badge(met, color=color)
                    if m.detail:
                        ui.label(m.detail).classes("text-body2 text-grey-7")
        ui.label("Dashboard update latency is measured by this server: event commit to the page update it "
                 "pushes (see `signalsloop bench --dashboard` for commit-to-screen in a real browser).") \
            .classes("text-body2 text-grey-7")


def windowed_page(request: Request, title: str, path: str, window: str, default_s: int) -> tuple[Identity, int]:
    """The frame and a window chooser (reloads the page with ``?window=``); the window in seconds."""
    who = identity(request)
    frame(who, title)
    ui.select(list(WINDOWS), value=window if window in WINDOWS else None, label="Window",
              on_change=lambda e: ui.navigate.to(f"{path}?window={e.value}")).style("width: 10rem")
    return who, WINDOWS.get(window, default_s)


def side_tables(alerts: list[dict[str, Any]], rings: list[dict[str, Any]]) -> None:
    with ui.row().classes("full-width no-wrap"):
        with ui.column().style("width: 50%"):
            ui.label("Alerts").classes("text-h6")
            for a in alerts:
                state = f"resolved {when(a['resolved_at'])}" if a["resolved_at"] else "OPEN"
                ui.label(f"{when(a['raised_at'])} {a['agent']} in {short(a['project_id'])}: "
                         f"{', '.join(a['reasons'])} — {state}").props("data-alert")
            if not alerts:
                ui.label("No alerts.")
        with ui.column().style("width: 50%"):
            ui.label("Recent doorbell errors (rung, never answered)").classes("text-h6")
            for r in rings:
                ui.label(f"{when(r['rung_at'])} {r['agent']} delivery {r['id']} ({r['event_type']}): "
                         f"rung {r['ring_count']}x {r['last_error'] or ''}").props("data-doorbell-error")
            if not rings:
                ui.label("None.")
