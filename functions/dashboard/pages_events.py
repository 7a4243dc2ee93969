"""Events: newest first, live. New rows arrive on a wake-up from the feed;
the page then reads what is new under its own RLS and renders at most every
``FLUSH_S`` in one table update (batched), keeping ``MAX_ROWS``."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import Request
from nicegui import ui

from functions.dashboard import queries
from functions.dashboard.app import identity, server
from functions.dashboard.layout import RESPONSE_TIMEOUT_S, frame, project_names, query, short, when

MAX_ROWS = 100
GAP = "gap: 0.5rem"
FLUSH_S = 0.1
# After a render of many rows, wait this long before the next one (batching under load).
BUSY_GAP_S = 0.4
# Events get created_at at their transaction's start, so one may commit after
# a younger one: live reads look this far back and skip what is shown.
OVERLAP = timedelta(seconds=5)

COLUMNS = [
    {"name": "created_at", "label": "Time", "field": "created_at", "align": "left"},
    {"name": "type", "label": "Type", "field": "type", "align": "left"},
    {"name": "project", "label": "Project", "field": "project", "align": "left"},
    {"name": "producer", "label": "Producer", "field": "producer", "align": "left"},
    {"name": "aggregate", "label": "Aggregate", "field": "aggregate", "align": "left"},
    {"name": "deliveries", "label": "Deliveries", "field": "deliveries", "align": "left"},
    {"name": "chain", "label": "", "field": "correlation_id"},
]

# Plain elements, not Quasar components, per row: at 200 events/s the browser
# re-renders up to MAX_ROWS rows a few times a second.
ROW_TEMPLATE = r"""
<tr :data-event-id="props.row.id" :data-type="props.row.type" class="event-row">
  <td>{{ props.row.created_at }}</td>
  <td><b>{{ props.row.type }}</b></td>
  <td>{{ props.row.project }}</td>
  <td>{{ props.row.producer }}</td>
  <td :title="props.row.aggregate_id">{{ props.row.aggregate }}</td>
  <td><span v-for="(s, a) in props.row.deliveries" :key="a" :class="'delivery delivery-' + s" :data-agent="a"
            :data-status="s">{{ a }}: {{ s }}</span></td>
  <td><a :href="'/chain/' + props.row.correlation_id" class="chain-link">chain</a></td>
</tr>"""
CSS = """
.delivery { display: inline-block; margin-right: 4px; padding: 0 6px; border-radius: 4px; color: white;
            font-size: 12px; background: #9e9e9e; }
.delivery-succeeded { background: #21ba45; } .delivery-dead { background: #c10015; }
.delivery-failed { background: #f2c037; color: black; } .delivery-running { background: #1976d2; }
.delivery-parked { background: #9c27b0; } .delivery-blocked { background: black; }
"""


class EventsView:
    def __init__(self, request: Request) -> None:
        self.who = identity(request)
        self.flt = queries.EventFilter()
        self.rows: list[dict[str, Any]] = []
        self.shown: set[str] = set()
        self.live = True  # on the newest page; older pages do not move
        self.dirty = False
        self.busy = False
        self.next_render = 0.0
        self.names: dict[str, str] = {}
        self.table: Any = None
        self.status: Any = None

    def row(self, r: dict[str, Any]) -> dict[str, Any]:
        return {"id": str(r["id"]), "type": r["type"], "created_at": when(r["created_at"]),
                "created": r["created_at"], "project": self.names.get(r["project_id"] or "", short(r["project_id"])),
                "producer": r["producer"] or "", "aggregate": f"{r['aggregate_type']} {short(r['aggregate_id'])}",
                "aggregate_id": str(r["aggregate_id"]), "deliveries": r["deliveries"],
                "correlation_id": r["correlation_id"] or str(r["id"])}

    async def reload(self, before: tuple[datetime, UUID] | None = None) -> None:
        self.live = before is None
        found = await query(self.who, queries.list_events, self.flt, before=before)
        self.rows = [self.row(r) for r in found]
        self.shown = {r["id"] for r in self.rows}
        self.render()

    async def older(self) -> None:
        if self.rows:
            last = self.rows[-1]
            await self.reload((last["created"], UUID(last["id"])))

    def wake(self) -> None:
        self.dirty = True

    async def tick(self) -> None:
        """Runs every FLUSH_S: one read and one table update for everything new."""
        if not self.dirty or self.busy or not self.live or time.monotonic() < self.next_render:
            return
        self.dirty, self.busy = False, True
        try:
            newest = self.rows[0]["created"] - OVERLAP if self.rows else None
            found = await query(self.who, queries.list_events, self.flt, since_at=newest, limit=MAX_ROWS)
            fresh = [self.row(r) for r in found if str(r["id"]) not in self.shown]
            if fresh:
                now = time.time()
                server().push_latency_ms.extend((now - r["created"].timestamp()) * 1000 for r in fresh)
                self.rows = sorted(fresh + self.rows, key=lambda r: (r["created"], r["id"]), reverse=True)[:MAX_ROWS]
                self.shown = {r["id"] for r in self.rows}
                self.render()
                self.next_render = time.monotonic() + (BUSY_GAP_S if len(fresh) > 5 else 0)
        finally:
            self.busy = False

    def render(self) -> None:
        self.table.rows = [{k: v for k, v in r.items() if k != "created"} for r in self.rows]
        self.table.update()
        self.status.set_text(f"{len(self.rows)} events shown" + ("" if self.live else " (older page; live paused)"))


def register() -> None:
    @ui.page("/", response_timeout=RESPONSE_TIMEOUT_S)
    def home() -> None:
        ui.navigate.to("/events")

    @ui.page("/events", response_timeout=RESPONSE_TIMEOUT_S)
    async def events_page(request: Request) -> None:
        view = EventsView(request)
        frame(view.who, "Events")
        ui.add_css(CSS)
        offered = await query(view.who, queries.filters)
        view.names = project_names(offered["projects"])
        # The filter controls (Quasar selects and inputs, a quarter of the
        # browser's work for this page) are built once the page is connected,
        # so the first rows do not wait for them.
        holder = ui.element("div").classes("full-width")
        with ui.row().classes("items-center").style(GAP):
            ui.button("Newest", on_click=lambda: view.reload()).props("outline data-action=newest")
            ui.button("Older", on_click=view.older).props("outline data-action=older")
            view.status = ui.label("").props("data-events-status")
        view.table = ui.table(columns=COLUMNS, rows=[], row_key="id", pagination=0).classes("full-width")
        view.table.add_slot("body", ROW_TEMPLATE)
        await view.reload()
        server().feed.subscribe(view.wake)
        ui.context.client.on_disconnect(lambda: server().feed.unsubscribe(view.wake))
        ui.timer(FLUSH_S, view.tick)

        def build_filters() -> None:
            with holder:
                filters(view, offered["event_types"], offered["agents"])

        ui.timer(0, build_filters, once=True)


def filters(view: EventsView, types: list[str], agents: list[str]) -> None:
    async def apply() -> None:
        view.flt = queries.EventFilter(
            types=list(type_box.value or []), project_id=project_box.value or None, agent=agent_box.value or None,
            status=status_box.value or None, since=_parse(since_box.value), until=_parse(until_box.value),
            aggregate_id=_uuid(aggregate_box.value))
        await view.reload()

    with ui.row().classes("items-end full-width").style(GAP):
        type_box = ui.select(types, multiple=True, label="Types", on_change=apply).style("width: 16rem") \
            .props("use-chips clearable data-filter=types")
        project_box = ui.select({"": "all projects", **view.names}, value="", label="Project",
                                on_change=apply).style("width: 12rem").props("data-filter=project")
        agent_box = ui.select(["", *agents], value="", label="Agent", on_change=apply).style("width: 9rem") \
            .props("data-filter=agent")
        status_box = ui.select(["", *queries.STATUSES], value="", label="Delivery status",
                               on_change=apply).style("width: 9rem").props("data-filter=status")
        since_box = ui.input("From (YYYY-MM-DD HH:MM)", on_change=apply).props("data-filter=since debounce=600")
        until_box = ui.input("To", on_change=apply).props("data-filter=until debounce=600")
        aggregate_box = ui.input("Aggregate id", on_change=apply).style("width: 20rem") \
            .props("data-filter=aggregate debounce=400")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        ui.notify(f"not a date and time: {value}", type="warning")
        return None
    return parsed if parsed.tzinfo else parsed.astimezone()


def _uuid(value: str | None) -> UUID | None:
    if not value or not value.strip():
        return None
    try:
        return UUID(value.strip())
    except ValueError:
        ui.notify("the aggregate id must be a uuid", type="warning")
        return None
