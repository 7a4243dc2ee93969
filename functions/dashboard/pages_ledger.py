"""Chain (tree and waterfall of one correlation id) and dead letters (list,
replay one, an agent's or a filter's, with confirmation; replays recorded)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import Request
from nicegui import ui

from functions.dashboard import queries
from functions.dashboard.app import identity
from functions.dashboard.db import Identity
from functions.dashboard.layout import RESPONSE_TIMEOUT_S, STATUS_COLORS, frame, project_names, query, short, when


def tree_nodes(events: list[dict[str, Any]], deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events nested under the event that caused them; deliveries as leaves."""
    by_event: dict[str, list[dict[str, Any]]] = {}
    for d in deliveries:
        by_event.setdefault(str(d["event_id"]), []).append(d)
    nodes: dict[str, dict[str, Any]] = {}
    for e in events:
        leaves = [{"id": f"d{d['id']}", "label": f"{d['agent']}: {d['status']} after {d['attempts']} attempt(s)"}
                  for d in by_event.get(str(e["id"]), [])]
        nodes[str(e["id"])] = {"id": str(e["id"]), "label": f"{e['type']} (by {e['producer']})", "children": leaves}
    roots: list[dict[str, Any]] = []
    for e in events:
        parent = nodes.get(str(e["causation_id"] or ""))
        (parent["children"] if parent else roots).append(nodes[str(e["id"])])
    return roots


def waterfall(events: list[dict[str, Any]], deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    """An ECharts option: one bar per attempt, offset from the chain's start."""
    start = min(e["created_at"] for e in events)
    types = {str(e["id"]): e["type"] for e in events}

    def ms(at: Any) -> float:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        return round((moment - start).total_seconds() * 1000, 1)

    labels, offsets, lengths, colors = [], [], [], []
    for d in deliveries:
        for a in d["attempts_log"]:
            labels.append(f"{types.get(str(d['event_id']), '?')} → {d['agent']} #{a['attempt']}")
            offsets.append(ms(a["started_at"]))
            lengths.append(a["ms"])
            colors.append({"succeeded": "#16a34a", "running": "#2563eb"}.get(a["outcome"], "#dc2626"))
    return {
        "grid": {"left": 260, "right": 30, "top": 20, "bottom": 30},
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
        "xAxis": {"type": "value", "name": "ms since the chain began"},
        "yAxis": {"type": "category", "data": labels, "inverse": True},
        "series": [
            {"type": "bar", "stack": "t", "data": offsets, "itemStyle": {"color": "transparent"}, "name": "wait"},
            {"type": "bar", "stack": "t", "name": "run (ms)",
             "data": [{"value": v, "itemStyle": {"color": c}} for v, c in zip(lengths, colors, strict=True)]},
        ],
    }


def register() -> None:
    register_chain()
    register_dead()


def register_chain() -> None:
    @ui.page("/chain/{correlation_id}", response_timeout=RESPONSE_TIMEOUT_S)
    async def chain_page(request: Request, correlation_id: str) -> None:
        who = identity(request)
        frame(who, "Chain")
        try:
            cid = UUID(correlation_id)
        except ValueError:
            ui.label("not a correlation id").props("data-error")
            return
        found = await query(who, queries.chain, cid)
        events, deliveries = found["events"], found["deliveries"]
        ui.label(f"Chain {cid}: {len(events)} events, {len(deliveries)} deliveries").classes("text-h6") \
            .props(f"data-chain={cid}")
        if not events:
            ui.label("No events you may see in this chain.")
            return
        with ui.row().classes("full-width no-wrap"):
            ui.tree(tree_nodes(events, deliveries), label_key="label").expand().style("width: 33%")
            ui.echart(waterfall(events, deliveries)).style("width: 67%").style(
                f"height: {max(200, 28 * sum(len(d['attempts_log']) for d in deliveries) + 60)}px")
        for e in events:
            with ui.card().classes("full-width").props(f"data-event-id={e['id']} data-depth={e['depth']}"):
                ui.label(f"{when(e['created_at'])}  {e['type']}  by {e['producer']}  "
                         f"(depth {e['depth']}, {e['aggregate_type']} {short(e['aggregate_id'])})") \
                    .classes("text-weight-bold")
                for d in (d for d in deliveries if d["event_id"] == e["id"]):
                    delivery_row(d)


def delivery_row(d: dict[str, Any]) -> None:
    with ui.row().classes("items-center").style("gap: 0.5rem").props(
            f"data-delivery-id={d['id']} data-agent={d['agent']} data-status={d['status']}"):
        ui.badge(d["status"], color=STATUS_COLORS.get(d["status"], "grey"))
        ui.label(f"{d['agent']}: {d['attempts']} attempt(s)")
        for a in d["attempts_log"]:
            ui.label(f"#{a['attempt']} {a['outcome']} {a['ms']} ms" + (f" — {a['error']}" if a["error"] else "")) \
                .classes("text-body2 text-grey-7")


class DeadView:
    def __init__(self, who: Identity) -> None:
        self.who = who
        self.agent = self.event_type = self.project = ""
        self.rows: list[dict[str, Any]] = []
        self.names: dict[str, str] = {}

    async def load(self) -> None:
        self.rows = await query(self.who, queries.dead_letters, agent=self.agent or None,
                                event_type=self.event_type or None, project_id=self.project or None)
        self.list_view.refresh()
        self.log_view.refresh()

    async def replay(self, what: str, calls: list[dict[str, Any]]) -> None:
        """Replay after the person confirms; each call is one recorded replay."""
        with ui.dialog() as dialog, ui.card().props("data-confirm"):
            ui.label(f"Replay {what}?")
            with ui.row():
                ui.button("Replay", on_click=lambda: dialog.submit(True)).props("data-action=confirm")
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat")
        if not await dialog:
            return
        try:
            total = 0
            for call in calls:
                total += await query(self.who, queries.replay, **call)
        except Exception as exc:  # refused by the database (not an owner/admin): say so, change nothing
            ui.notify(f"replay refused: {str(exc).splitlines()[0]}", type="negative")
            return
        ui.notify(f"replayed {total} deliveries", type="positive")
        await self.load()

    def by_project(self, **filt: Any) -> list[dict[str, Any]]:
        """A member replays one project at a time (the function checks each)."""
        if self.who.operator:
            return [{"project_id": self.project or None, **filt}]
        projects = sorted({str(r["project_id"]) for r in self.rows})
        return [{"project_id": p, **filt} for p in projects]

    @ui.refreshable_method
    def list_view(self) -> None:
        if not self.rows:
            ui.label("No dead letters.").props("data-dead-empty")
            return
        for agent in sorted({r["agent"] for r in self.rows}):
            ui.button(f"Replay all dead of {agent}", on_click=lambda a=agent: self.replay(
                f"all dead deliveries of {a}", self.by_project(agent=a))) \
                .props(f"outline data-replay-agent={agent}")
        ui.button("Replay all matching the filter", on_click=lambda: self.replay(
            "every dead delivery matching the filter",
            self.by_project(agent=self.agent or None, event_type=self.event_type or None))) \
            .props("outline data-replay-filter")
        for r in self.rows:
            with ui.row().classes("items-center full-width").style("gap: 0.75rem").props(
                    f"data-dead-id={r['id']} data-event-id={r['event_id']} data-agent={r['agent']}"):
                ui.label(when(r["finished_at"]))
                ui.link(r["event_type"], f"/chain/{r['correlation_id']}")
                ui.label(f"{r['agent']} · {self.names.get(str(r['project_id']), short(r['project_id']))} · "
                         f"{r['attempts']} attempts").classes("text-grey-7")
                ui.label(r["last_error"] or "").classes("text-red-9 text-body2")
                ui.button("Replay", on_click=self._one(r)).props("dense data-action=replay")

    def _one(self, r: dict[str, Any]) -> Callable[[], Awaitable[None]]:
        return lambda: self.replay(f"{r['agent']} for this {r['event_type']}",
                                   [{"event_id": r["event_id"], "agent": r["agent"]}])

    @ui.refreshable_method
    async def log_view(self) -> None:
        log = await query(self.who, queries.replay_log)
        ui.label("Replay log").classes("text-h6 q-mt-md")
        for entry in log:
            ui.label(f"{when(entry['created_at'])}  {entry['actor']} replayed {entry['replayed']} "
                     f"({entry['filter']})").props("data-replay-log")


def register_dead() -> None:
    @ui.page("/dead", response_timeout=RESPONSE_TIMEOUT_S)
    async def dead_page(request: Request) -> None:
        who = identity(request)
        frame(who, "Dead letters")
        view = DeadView(who)
        offered = await query(who, queries.filters)
        view.names = project_names(offered["projects"])
        agents = offered["agents"]

        async def set_filter(name: str, value: Any) -> None:
            setattr(view, name, value or "")
            await view.load()

        with ui.row().classes("items-end").style("gap: 0.5rem"):
            ui.select(["", *agents], value="", label="Agent", on_change=lambda e: set_filter("agent", e.value)) \
                .style("width: 9rem").props("data-filter=agent")
            ui.input("Event type", on_change=lambda e: set_filter("event_type", e.value)).props("debounce=500")
            ui.select({"": "all projects", **view.names}, value="", label="Project",
                      on_change=lambda e: set_filter("project", e.value)).style("width: 12rem")
        view.list_view()
        await view.log_view()
        await view.load()
