"""Time as events: clock.tick per project per cadence boundary, deterministic
ids (the same as Python's uuid3 in SignalsLoop's namespace), and two clocks
ticking at once publish one tick."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any
from uuid import uuid3

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.events import EventType
from shared.publish import NAMESPACE, clock_tick_id
from tests.helpers import Seed

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def ticks(seed: Seed) -> list[dict[str, Any]]:
    return seed.events(EventType.CLOCK_TICK)


def test_a_tick_per_project_with_its_id_payload_and_chain(seed: Seed) -> None:
    projects = sorted([seed.project(), seed.project()])
    assert seed.conn.execute("select publish_clock_tick(%s) as n", (AT,)).fetchone()["n"] == 2
    got = sorted(ticks(seed), key=lambda r: r["aggregate_id"])
    assert [r["aggregate_id"] for r in got] == projects
    for row, project in zip(got, projects, strict=True):
        assert row["id"] == uuid3(NAMESPACE, f"clock.tick/2026-03-01T09:00:00Z/{project}") == clock_tick_id(AT, project)
        assert row["aggregate_type"] == "clock" and row["payload"]["at"] == "2026-03-01T09:00:00Z"
        assert row["payload"]["interval_seconds"] == 3600
        meta = row["metadata"]
        assert meta["producer"] == "clock" and meta["depth"] == 0 and meta["correlation_id"] == str(row["id"])
        assert meta["project_id"] == str(project)
    assert sorted(d["agent"] for d in seed.deliveries(event_id=got[0]["id"])) == ["engagement", "notify", "roadmap"]
    # Again, and for one project: nothing new.
    assert seed.conn.execute("select publish_clock_tick(%s, %s) as n", (AT, projects[0])).fetchone()["n"] == 0
    assert len(ticks(seed)) == 2


@pytest.mark.parametrize(("query", "params"), [
    pytest.param("select publish_clock_tick(%s) as n", (AT,), id="two ticks for one time"),
    pytest.param("select clock_periodic() as n", None, id="two schedules (pg_cron and a timer)"),
])
def test_two_clocks_ticking_at_once_publish_one_tick(db_url: str, seed: Seed, query: str,
                                                      params: tuple[Any, ...] | None) -> None:
    project = seed.project()
    seed.conn.execute("update projects set created_at = now() - interval '2 hours'")  # the schedule ticks it
    barrier = threading.Barrier(2)
    published: list[int] = []

    def clock() -> None:
        with psycopg.connect(db_url, row_factory=dict_row) as conn:  # one transaction each
            barrier.wait()
            published.append(conn.execute(query, params).fetchone()["n"])
            conn.commit()

    threads = [threading.Thread(target=clock) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(published) == [0, 1]
    (tick,) = ticks(seed)
    assert tick["aggregate_id"] == project
    assert len(seed.deliveries(event_id=tick["id"])) == 3  # engagement, roadmap, notify: once each


def test_the_periodic_clock_ticks_once_per_boundary(seed: Seed) -> None:
    seed.project()
    seed.conn.execute("update projects set created_at = now() - interval '2 hours'")
    seed.project()  # created within the last interval: its first tick is the next boundary
    first = seed.conn.execute("select run_periodic() as r").fetchone()["r"]
    again = seed.conn.execute("select run_periodic() as r").fetchone()["r"]
    assert first["clock_ticks"] == 1 and again["clock_ticks"] == 0 and "rung" in first
    (tick,) = ticks(seed)
    at = datetime.fromisoformat(tick["payload"]["at"])
    assert at.minute == 0 and at.second == 0  # on the hour
    (row,) = seed.conn.execute("select * from clock_ticks").fetchall()
    assert row["tick_at"] == at and row["projects"] == 1


def test_the_clock_can_be_turned_off_and_refuses_bad_input(seed: Seed) -> None:
    seed.project()
    seed.configure(clock_interval_seconds=0)
    assert seed.conn.execute("select run_periodic() as r").fetchone()["r"]["clock_ticks"] == 0
    assert ticks(seed) == []
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown project"):
        seed.conn.execute("select publish_clock_tick(now(), gen_random_uuid())")
    with pytest.raises(psycopg.errors.CheckViolation):
        seed.configure(clock_interval_seconds=5)
