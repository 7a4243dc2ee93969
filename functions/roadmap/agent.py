"""Roadmap agent: the roadmap item of each approved spec, with its target
date (the spec's ``content.target_date``, else ``roadmap_target_days``,
default 30, after approval).

- ``roadmap.updated`` on every change of an item's status or target date.
- Progress (a status change, an edit, a link or a comment) is recorded on
  the item and ends a stall.
- On a ``clock.tick``, an approved or in-progress item stalls when it has
  seen no progress for more than ``roadmap_stall_days`` (default 14), or the
  day after its target date: ``roadmap.stalled`` once per stall (the id is
  global to the item and the progress or date it is about), and again only
  after progress.

Runs one delivery at a time per project, so a tick and a progress event never
race on one item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from shared.agent import Decision, Deps
from shared.clock import event_time, parse_time
from shared.errors import PermanentError
from shared.events import DomainEvent, EventType
from shared.feedback import project_settings
from shared.publish import follow_on
from shared.store import Write

NAME = "roadmap"
MODEL = "roadmap-rules-1"
ACTIVE = ("approved", "in_progress")
ON_ROADMAP = (*ACTIVE, "completed")
DEFAULT_STALL_DAYS = 14.0
DEFAULT_TARGET_DAYS = 30.0
PROGRESS = {EventType.SPEC_APPROVED: "status", EventType.SPEC_COMPLETED: "status", EventType.SPEC_LINKED: "link",
            EventType.SPEC_UPDATED: "edit", EventType.SPEC_COMMENTED: "comment"}
ITEM_COLUMNS = ("spec_id", "project_id", "title", "status", "target_date", "linked_url", "approved_at",
                "completed_at", "last_progress_at", "last_progress", "stalled_at", "stall_reason", "stalls",
                "overdue_announced_for", "model", "source_event_id", "source_event_at")


@dataclass(frozen=True)
class Context:
    spec: dict[str, Any] | None = None
    item: dict[str, Any] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)  # clock.tick: the project's active items
    stall_days: float = DEFAULT_STALL_DAYS
    target_days: float = DEFAULT_TARGET_DAYS


class RoadmapAgent:
    name = NAME

    def load(self, event: DomainEvent, deps: Deps) -> Context:
        settings = project_settings(deps.store, event.project_id)
        stall = float(settings.get("roadmap_stall_days") or DEFAULT_STALL_DAYS)
        target = float(settings.get("roadmap_target_days") or DEFAULT_TARGET_DAYS)
        if event.type == EventType.CLOCK_TICK:
            items = deps.store.select("roadmap_items", eq={"project_id": event.project_id}, in_={"status": ACTIVE})
            return Context(items=items, stall_days=stall, target_days=target)
        spec = deps.store.select("specs", eq={"id": event.aggregate_id})
        item = deps.store.select("roadmap_items", eq={"spec_id": event.aggregate_id})
        return Context(spec[0] if spec else None, item[0] if item else None, stall_days=stall, target_days=target)

    def decide(self, event: DomainEvent, context: Context) -> Decision:
        return decide(event, context)


def as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def target_date(spec: dict[str, Any], item: dict[str, Any] | None, approved_at: datetime | None,
                target_days: float) -> date | None:
    """The spec's own target date, else the item's, else a default after approval."""
    content = spec.get("content") if isinstance(spec.get("content"), dict) else {}
    own = as_date((content or {}).get("target_date"))
    if own is not None:
        return own
    if item is not None and item.get("target_date") is not None:
        return as_date(item["target_date"])
    return (approved_at + timedelta(days=target_days)).date() if approved_at else None


def decide(event: DomainEvent, context: Context) -> Decision:
    if event.type == EventType.CLOCK_TICK:
        return decide_tick(event, context)
    spec, item = context.spec, context.item
    if spec is None:
        return Decision(summary={"skipped": "spec no longer exists"})
    if item is None and spec["status"] not in ON_ROADMAP:
        return Decision(summary={"skipped": f"a {spec['status']} spec is not on the roadmap"})
    at = event_time(event)
    kind = PROGRESS.get(event.type, "edit")
    if event.type == EventType.SPEC_UPDATED and "status" in (event.payload.get("changed") or []):
        kind = "status"
    before = item or {}
    approved_at = before.get("approved_at") or (at if spec["status"] in ON_ROADMAP else None)
    target = target_date(spec, item, approved_at, context.target_days)
    last = max([at, *([parse_time(before["last_progress_at"])] if before.get("last_progress_at") else [])])
    row = {"spec_id": spec["id"], "project_id": event.project_id, "title": spec["title"], "status": spec["status"],
           "target_date": target, "linked_url": spec.get("linked_url"), "approved_at": approved_at,
           "completed_at": before.get("completed_at") or (at if spec["status"] == "completed" else None),
           "last_progress_at": last, "last_progress": kind, "stalled_at": None, "stall_reason": None,
           "stalls": int(before.get("stalls") or 0), "overdue_announced_for": before.get("overdue_announced_for"),
           "model": MODEL, "source_event_id": event.id, "source_event_at": at}
    changed = [k for k in ("status", "target_date")
               if item is None or (as_date(before.get(k)) if k == "target_date" else before.get(k)) != row[k]]
    events = []
    if changed:
        payload = {"spec_id": str(spec["id"]), "title": spec["title"], "status": spec["status"],
                   "previous_status": before.get("status"), "target_date": _iso(target),
                   "previous_target_date": _iso(as_date(before.get("target_date"))), "changed": changed,
                   "created": item is None, "linked_url": spec.get("linked_url"), "trigger": event.type,
                   "model": MODEL}
        events.append(follow_on(event, agent=NAME, event_type=EventType.ROADMAP_UPDATED, aggregate_type="spec",
                                aggregate_id=spec["id"], payload=payload))
    return Decision(writes=[Write("roadmap_items", [row], ("spec_id",))], events=events,
                    summary={"status": spec["status"], "changed": changed, "progress": kind,
                             "resumed": bool(before.get("stalled_at"))})


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def stall_reason(item: dict[str, Any], at: datetime, stall_days: float) -> str | None:
    """Why an active, not yet stalled item stalls at ``at``, if it does."""
    if item.get("status") not in ACTIVE or item.get("stalled_at"):
        return None
    target = as_date(item.get("target_date"))
    if target is not None and at.date() > target and as_date(item.get("overdue_announced_for")) != target:
        return "past_target_date"
    if at - parse_time(item["last_progress_at"]) > timedelta(days=stall_days):
        return "no_progress"
    return None


def decide_tick(event: DomainEvent, context: Context) -> Decision:
    at = event_time(event)
    rows, events = [], []
    for item in sorted(context.items, key=lambda i: str(i["spec_id"])):
        reason = stall_reason(item, at, context.stall_days)
        if reason is None:
            continue
        if not item.get("last_progress_at"):
            raise PermanentError(f"roadmap item {item['spec_id']} has no last progress")
        last, target = parse_time(item["last_progress_at"]), as_date(item.get("target_date"))
        overdue = reason == "past_target_date"
        rows.append({**{k: item.get(k) for k in ITEM_COLUMNS}, "stalled_at": at, "stall_reason": reason,
                     "stalls": int(item.get("stalls") or 0) + 1,
                     "overdue_announced_for": target if overdue else item.get("overdue_announced_for")})
        about = f"due:{_iso(target)}" if overdue else f"idle:{last.isoformat()}"
        payload = {"spec_id": str(item["spec_id"]), "title": item["title"], "status": item["status"],
                   "reason": reason, "target_date": _iso(target), "last_progress_at": last.isoformat(),
                   "last_progress": item.get("last_progress"),
                   "idle_days": round((at - last).total_seconds() / 86400, 2), "stall_days": context.stall_days,
                   "stall": int(item.get("stalls") or 0) + 1, "model": MODEL}
        events.append(follow_on(event, agent=NAME, event_type=EventType.ROADMAP_STALLED, aggregate_type="spec",
                                aggregate_id=item["spec_id"], payload=payload,
                                key=f"{item['spec_id']}:{about}", once_per_key=True))
    writes = [Write("roadmap_items", rows, ("spec_id",))] if rows else []
    return Decision(writes=writes, events=events, summary={"stalled": len(events), "items": len(context.items)})
