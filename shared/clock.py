"""Time as events: when an event happened, and fixed windows of days.

A ``clock.tick`` carries the time it stands for in ``payload.at`` (a tick
published for a past or later time, by ``clock tick --at``, counts as that
time); any other event happened when it was created.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.errors import PermanentError
from shared.events import DomainEvent, EventType

# Windows of whole days are counted from a Monday, so 7-day windows are ISO weeks (UTC).
WINDOW_EPOCH = datetime(1970, 1, 5, tzinfo=UTC)


def parse_time(value: Any, what: str = "time") -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as error:
            raise PermanentError(f"{what} is not an ISO 8601 time: {str(value)[:60]!r}") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_time(event: DomainEvent) -> datetime:
    if event.type == EventType.CLOCK_TICK:
        if "at" not in event.payload:
            raise PermanentError("clock.tick without payload.at")
        return parse_time(event.payload["at"], "clock.tick payload.at")
    at = event.created_at or event.metadata.timestamp
    if at is None:
        raise PermanentError(f"{event.type} {event.id} has no time")
    return parse_time(at)


def window_start(at: datetime, days: int) -> datetime:
    """The start of the fixed ``days``-long window holding ``at``."""
    size = timedelta(days=max(days, 1))
    return WINDOW_EPOCH + ((at - WINDOW_EPOCH) // size) * size

