"""Publishing the clock.tick for a given time, for tests, the demo and
backfills (``signalsloop clock tick``, :mod:`signalsloop.cli.clock`).

The periodic schedule (``run_periodic()``) publishes ticks on its own at the
cadence in ``backbone_config.clock_interval_seconds``; this publishes one
for any time. Ids are deterministic per (time, project), so a tick already
published is not published again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    import psycopg


def publish_tick(conn: psycopg.Connection[Any], at: datetime, project: UUID | None = None) -> int:
    """How many tick events were new (one per project, or 0 when already published)."""
    from shared.errors import BadRequest
    from signalsloop.operations.query import query

    if project is not None and not query(conn, "select 1 from public.projects where id = %s", (project,)):
        raise BadRequest(f"unknown project {project}")
    rows = query(conn, "select public.publish_clock_tick(%s, %s) as n", (at, project))
    return int(rows[0]["n"])
