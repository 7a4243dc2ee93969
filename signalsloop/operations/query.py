"""Helpers shared by the operator queries (:mod:`signalsloop.operations.events`,
:mod:`signalsloop.operations.agents`): running SQL with the backbone's error
taxonomy, and parsing what an operator types (ids, durations, times).

Every function here returns plain data or raises a
:class:`~shared.errors.SignalsLoopError` with a message fit for a terminal.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from shared.errors import BadRequest
from shared.postgres_store import store_error

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest duration taken (100 years): "that long ago" must stay a date.
MAX_DURATION_S = 100 * 365.25 * 86400


def query(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Rows as dicts; a database error becomes a ``StoreError``."""
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.encode(), params)
            return list(cur.fetchall()) if cur.description else []
    except psycopg.Error as exc:
        raise store_error(exc) from exc


def parse_uuid(value: str, what: str = "id") -> UUID:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        raise BadRequest(f"{what} {value!r} is not a valid UUID") from None


def parse_duration(value: str) -> timedelta:
    """``90s``, ``10m``, ``2h``, ``1.5d``, ``1w``, ``250ms``."""
    match = _DURATION.match(value)
    if not match:
        raise BadRequest(f"duration {value!r} is not understood; use e.g. 30s, 10m, 2h, 1d")
    seconds = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds > MAX_DURATION_S:
        raise BadRequest(f"duration {value!r} is too long (at most 100 years)")
    return timedelta(seconds=seconds)


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """An ISO time (naive means local time) or a duration meaning "that long ago"."""
    if _DURATION.match(value):
        try:
            return (now or datetime.now(UTC)) - parse_duration(value)
        except OverflowError:
            raise BadRequest(f"time {value!r} ago is before the year 1") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(f"time {value!r} is neither an ISO time (2026-11-28T10:00) nor a duration (10m)") from None
    try:  # in UTC, so no later conversion can leave the years 1-9999 (0001-01-01+05:00 is year 0 there)
        return (parsed if parsed.tzinfo else parsed.astimezone()).astimezone(UTC)
    except (OverflowError, ValueError):
        raise BadRequest(f"time {value!r} is outside the years 1 to 9999 in UTC") from None


def short(value: object, size: int = 8) -> str:
    """The first characters of an id, enough to tell rows apart on screen."""
    return "-" if value is None else str(value)[:size]
