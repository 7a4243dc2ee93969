"""Event times (a tick stands for payload.at) and fixed windows of days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import event_time, parse_time, window_start
from shared.errors import PermanentError
from shared.events import EventType
from tests.functions.conftest import T0, make_event


def test_a_tick_happens_at_payload_at_other_events_when_created() -> None:
    assert event_time(make_event(EventType.CLOCK_TICK, {"at": "2030-05-01T10:00:00Z"})) == datetime(
        2030, 5, 1, 10, tzinfo=UTC)
    assert event_time(make_event(EventType.FEEDBACK_CREATED)) == T0
    with pytest.raises(PermanentError, match="without payload"):
        event_time(make_event(EventType.CLOCK_TICK, {}))
    with pytest.raises(PermanentError, match="has no time"):
        event_time(make_event(EventType.FEEDBACK_CREATED, created_at=None))


def test_naive_times_are_utc_and_garbage_is_a_clear_error() -> None:
    assert parse_time("2030-05-01T10:00:00") == datetime(2030, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(PermanentError, match="not an ISO 8601 time"):
        parse_time("next tuesday")


@pytest.mark.parametrize(
    ("at", "days", "start"),
    [
        pytest.param(datetime(2026, 1, 15, 12, tzinfo=UTC), 7, datetime(2026, 1, 12, tzinfo=UTC), id="a Thursday"),
        pytest.param(datetime(2026, 1, 12, tzinfo=UTC), 7, datetime(2026, 1, 12, tzinfo=UTC), id="Monday midnight"),
        pytest.param(datetime(2026, 1, 11, 23, 59, tzinfo=UTC), 7, datetime(2026, 1, 5, tzinfo=UTC), id="Sunday"),
        pytest.param(datetime(2026, 1, 15, 12, tzinfo=UTC), 1, datetime(2026, 1, 15, tzinfo=UTC), id="one day"),
    ],
)
def test_windows_are_fixed_and_weeks_start_on_monday(at: datetime, days: int, start: datetime) -> None:
    assert window_start(at, days) == start
    assert window_start(start + timedelta(days=days) - timedelta(microseconds=1), days) == start

