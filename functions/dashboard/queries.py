"""The dashboard's reads: each one SQL function of migration
``20261202000401_dashboard_reads.sql`` called as the signed-in person
through the data port (:mod:`functions.dashboard.reads`), on either path.

Both paths answer the same JSON; :func:`revive` turns its timestamps back
into datetimes for the pages. Event listing is keyset-paginated on
``(created_at, id)`` with only the filters given, so each page is an index
range scan however many millions of events the table holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from functions.dashboard.db import Identity
from functions.dashboard.reads import DashboardReads

STATUSES = ("pending", "running", "succeeded", "failed", "dead", "parked", "blocked")
PAGE_SIZE = 50
# The JSON keys that hold timestamps (ISO 8601 strings on the wire).
TIMESTAMPS = frozenset({"created_at", "finished_at", "first_started_at", "event_created_at", "started_at",
                        "raised_at", "resolved_at", "rung_at", "t"})


def revive(value: Any) -> Any:
    """Timestamps of the functions' JSON as datetimes, at any depth, except
    inside attempt logs and payloads, which the pages show as they are."""
    if isinstance(value, list):
        return [revive(v) for v in value]
    if isinstance(value, dict):
        return {k: (datetime.fromisoformat(v) if k in TIMESTAMPS and isinstance(v, str)
                    else v if k in ("attempts_log", "payload", "filter") else revive(v)) for k, v in value.items()}
    return value


@dataclass
class EventFilter:
    types: list[str] = field(default_factory=list)
    project_id: str | None = None
    agent: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    aggregate_id: UUID | None = None

    def args(self) -> dict[str, Any]:
        return {"p_types": list(self.types) or None, "p_project_id": UUID(self.project_id) if self.project_id else None,
                "p_agent": self.agent or None, "p_status": self.status or None, "p_since": self.since,
                "p_until": self.until, "p_aggregate_id": self.aggregate_id}


def list_events(reads: DashboardReads, who: Identity, flt: EventFilter, *,
                before: tuple[datetime, UUID] | None = None, since_at: datetime | None = None,
                limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """Newest first. ``before``: the keyset cursor of the previous page's last
    row. ``since_at``: only events at or after it (live updates)."""
    args = {**flt.args(), "p_before_at": before[0] if before else None, "p_before_id": before[1] if before else None,
            "p_since_at": since_at, "p_limit": limit}
    return list(revive(reads.call(who, "dashboard_events", args)))


def filters(reads: DashboardReads, who: Identity) -> dict[str, Any]:
    """What the filters offer: the projects ``who`` may see, the agents, and
    every event type (the catalogue's and the registry's subscriptions)."""
    from shared.events import ALL_EVENT_TYPES

    found = reads.call(who, "dashboard_filters", {})
    return {"projects": found["projects"], "agents": found["agents"],
            "event_types": sorted(ALL_EVENT_TYPES | set(found["event_types"]))}


def chain(reads: DashboardReads, who: Identity, correlation_id: UUID) -> dict[str, Any]:
    """The events of one chain (oldest first) with each delivery and its attempts."""
    return dict(revive(reads.call(who, "dashboard_chain", {"p_correlation_id": correlation_id})))


def dead_letters(reads: DashboardReads, who: Identity, *, agent: str | None = None, event_type: str | None = None,
                 project_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    return list(revive(reads.call(who, "dashboard_dead_letters", {
        "p_agent": agent, "p_type": event_type, "p_project_id": UUID(project_id) if project_id else None,
        "p_limit": limit})))


def replay(reads: DashboardReads, who: Identity, *, project_id: str | None = None, event_id: UUID | str | None = None,
           agent: str | None = None, event_type: str | None = None) -> int:
    """Dead deliveries back to pending through ``replay_dead_letters`` (which
    checks owner/admin for members and records who, when and what)."""
    n = reads.call(who, "replay_dead_letters", {
        "p_project_id": UUID(project_id) if project_id else None,
        "p_event_id": UUID(str(event_id)) if event_id else None, "p_agent": agent, "p_type": event_type,
        "p_actor": who.label})
    return int(n or 0)


def replay_log(reads: DashboardReads, who: Identity, limit: int = 50) -> list[dict[str, Any]]:
    return list(revive(reads.call(who, "dashboard_replay_log", {"p_limit": limit})))
