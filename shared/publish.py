"""Follow-on events with deterministic ids.

A retried agent computes the same ids again, and ``publish_events`` inserts
with "on conflict do nothing", so a retry never publishes an event twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid3, uuid5

from shared.events import DomainEvent, EventMetadata

# Fixed namespace for SignalsLoop's UUIDv5 ids. Never change it: ids derived
# from it are how retries recognise what they already published.
NAMESPACE = UUID("6f1c2b8e-5a0d-4d1e-9a57-3c8f0e2b9d41")


def event_id(cause: UUID | None, agent: str, event_type: str, key: str = "") -> UUID:
    """UUIDv5 of (causing event, agent, type, key). ``cause=None`` makes the id
    global to the key: "once per theme per threshold", whatever caused it."""
    scope = str(cause) if cause is not None else "*"
    return uuid5(NAMESPACE, f"{scope}/{agent}/{event_type}/{key}")


def stable_id(*parts: object) -> UUID:
    """A deterministic id for a result row (a theme, a spec) from its natural key."""
    return uuid5(NAMESPACE, "/".join(str(p) for p in parts))


def clock_tick_id(at: datetime, project_id: UUID) -> UUID:
    """The id of the clock.tick for ``at`` in a project, as SQL's
    ``public.clock_tick_id`` computes it (a name-based UUID, MD5: PostgreSQL has
    md5 built in, SHA-1 only with an extension)."""
    iso = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return uuid3(NAMESPACE, f"clock.tick/{iso}/{project_id}")


def follow_on(
    cause: DomainEvent,
    *,
    agent: str,
    event_type: str,
    aggregate_type: str,
    aggregate_id: UUID,
    payload: dict[str, Any],
    key: str = "",
    once_per_key: bool = False,
    version: int = 1,
) -> DomainEvent:
    """The event ``agent`` publishes in reaction to ``cause``, in ``cause``'s chain."""
    metadata = EventMetadata(
        project_id=cause.project_id,
        user_id=cause.metadata.user_id,
        correlation_id=cause.correlation_id,
        causation_id=cause.id,
        depth=cause.depth + 1,
        producer=agent,
    )
    return DomainEvent(
        id=event_id(None if once_per_key else cause.id, agent, event_type, key),
        type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
        metadata=metadata,
        version=version,
    )
