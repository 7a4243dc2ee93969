"""Across a retention boundary: issue 10's "partition maintenance keeps
inserting across a boundary", for the design we chose instead of partitions.

With time partitions, what can go wrong at a boundary is an insert with no
partition to land in (maintenance late to create the next one) or dropping
the oldest partition waiting on the hot path's locks. Here the tables are not
partitioned: the oldest rows cross out of retention and ``prune_retention``
deletes them in batches while new events keep arriving. The equivalent
guarantees, tested on a history whose oldest part is past the default
retention (events 365 days, succeeded deliveries 30 days):

* new events keep fanning out, and their deliveries keep being claimed and
  completed, while pruning removes the old rows, none of them waiting on it;
* pruning removes exactly the rows past the boundary, nothing inside it;
* after the mass delete and the vacuum it brings (as autovacuum would), the
  hot path still plans on the partial indexes of open deliveries, never a
  scan of the tables.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from signalsloop.benchmarks.history import load_history
from tests.conftest import cloned_database
from tests.supabase.test_scale_plans import INDEX_USE, captured_plans, seq_scans

FEEDBACK_AGENTS = 5  # sentiment, duplicate, notify, competitive, engagement subscribe to feedback.created


@dataclass
class Crossing:
    url: str
    project: UUID
    expected: dict[str, int]  # what the retention keeps of the history
    pruned: dict[str, int] = field(default_factory=dict)
    written: list[UUID] = field(default_factory=list)  # events the writer published and completed
    written_while_pruning: int = 0
    errors: list[str] = field(default_factory=list)


def _publish_and_complete(conn: psycopg.Connection[Any], project: UUID) -> UUID:
    """The hot path once: an event fans out, and every subscriber claims and
    completes its delivery (a steady load leaves nothing open behind it)."""
    eid = uuid4()
    conn.execute("insert into events (id, type, aggregate_type, aggregate_id, metadata) "
                 "values (%s, 'feedback.created', 'feedback', %s, %s)",
                 (eid, uuid4(), json.dumps({"project_id": str(project)})))
    claims = conn.execute("select c.delivery_id, c.claim_token, c.outcome from event_deliveries d, "
                          "claim_delivery(d.event_id, d.agent, 'w') c where d.event_id = %s", (eid,)).fetchall()
    assert len(claims) == FEEDBACK_AGENTS and {c[2] for c in claims} == {"claimed"}, claims
    for claim in claims:
        done = conn.execute("select complete_delivery(%s, %s)", claim[:2]).fetchone()
        assert done is not None and done[0]["completed"] is True, done
    return eid


def _writer(crossing: Crossing, stop: threading.Event) -> None:
    with psycopg.connect(crossing.url, autocommit=True) as conn:
        conn.execute("set lock_timeout = '2s'")  # waiting on pruning would be an error, not a slow test
        while not stop.is_set():
            try:
                crossing.written.append(_publish_and_complete(conn, crossing.project))
            except Exception as exc:  # reported by the test, not lost in a thread
                crossing.errors.append(repr(exc))
                return
            time.sleep(0.005)


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    row = conn.execute("""
        select (select count(*) from events where created_at >= now() - interval '365 days'),
               (select count(*) from events where created_at < now() - interval '365 days'),
               (select count(*) from event_deliveries where finished_at >= now() - interval '30 days'),
               (select count(*) from event_deliveries where finished_at < now() - interval '30 days'),
               (select count(*) from delivery_attempts)""").fetchone()
    assert row is not None
    return dict(zip(("events_kept", "events_past", "deliveries_kept", "deliveries_past", "attempts"), row,
                    strict=True))


@pytest.fixture(scope="module")
def crossing(pg_server: str) -> Iterator[Crossing]:
    """A history of 400 days (its oldest events past 365 days, most deliveries
    past 30) and a dense last month, pruned with the default retention until
    nothing is left to prune, while a second session keeps publishing."""
    with cloned_database(pg_server, "b_") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            load_history(conn, 12_000, days=400, chunk=6_000)
            project = load_history(conn, 24_000, days=25, chunk=12_000)
            # No row within an hour of a boundary: the counts below must not
            # change while the test runs because a row crossed meanwhile.
            conn.execute("delete from events where created_at between now() - interval '30 days 1 hour' "
                         "and now() - interval '29 days 23 hours' or created_at between "
                         "now() - interval '365 days 1 hour' and now() - interval '364 days 23 hours'")
            result = Crossing(url, project, _counts(conn))
            stop = threading.Event()
            writer = threading.Thread(target=_writer, args=(result, stop))
            writer.start()
            try:
                while len(result.written) < 5 and writer.is_alive():
                    time.sleep(0.01)  # the hot path is running before the first prune
                before = len(result.written)
                for _ in range(200):
                    removed = conn.execute("select prune_retention(500)").fetchone()[0]  # type: ignore[index]
                    for key, n in removed.items():
                        if isinstance(n, int):
                            result.pruned[key] = result.pruned.get(key, 0) + n
                    if not any(isinstance(n, int) and n > 0 for k, n in removed.items() if k != "duration_ms"):
                        break
                result.written_while_pruning = len(result.written) - before
            finally:
                stop.set()
                writer.join()
            # The mass delete's aftermath, as autovacuum would leave it.
            conn.execute("vacuum (analyze) events, event_deliveries, delivery_attempts")
        yield result


def test_new_events_keep_flowing_while_pruning_removes_exactly_the_rows_past_the_boundary(
        crossing: Crossing) -> None:
    before = crossing.expected
    assert before["events_past"] > 500 and before["deliveries_past"] > 10_000, before  # a real boundary
    assert crossing.errors == [], "the hot path never waited on pruning"
    assert crossing.written_while_pruning > 0, "events were published while pruning ran"
    with psycopg.connect(crossing.url) as conn:
        after = _counts(conn)
        written = len(crossing.written)
        new = FEEDBACK_AGENTS * written
        rows = conn.execute("select d.agent, d.status from event_deliveries d where d.event_id = any(%s)",
                            (crossing.written,)).fetchall()
    assert after == {"events_kept": before["events_kept"] + written, "events_past": 0,
                     "deliveries_kept": before["deliveries_kept"] + new, "deliveries_past": 0,
                     "attempts": before["deliveries_kept"] + new}, (before, after)
    assert len(rows) == new and {status for _, status in rows} == {"succeeded"}, "every subscriber, done"
    assert crossing.pruned["events"] == before["events_past"]
    assert crossing.pruned["succeeded_deliveries"] + crossing.pruned["deliveries_with_events"] \
        == before["deliveries_past"]


def test_the_hot_path_plans_on_the_partial_indexes_after_the_boundary(crossing: Crossing) -> None:
    with psycopg.connect(crossing.url) as conn:
        for _ in range(20):
            conn.execute("insert into events (id, type, aggregate_type, aggregate_id, metadata) "
                         "values (%s, 'feedback.created', 'feedback', %s, %s)",
                         (uuid4(), uuid4(), json.dumps({"project_id": str(crossing.project)})))
        conn.execute("set plan_cache_mode = force_generic_plan")  # the drain's long-lived sessions
        with captured_plans(conn) as plans:
            _publish_and_complete(conn, crossing.project)
            claimed = conn.execute("select delivery_id from claim_next('sentiment', 'w', null)").fetchone()
            conn.execute("select ring_next('competitive', null)")
            before_sweep = len(plans)
            conn.execute("select sweep_deliveries(500)")
            sweep = plans[before_sweep:]
        conn.rollback()
    assert claimed and claimed[0], "a claim finds an open delivery"
    assert seq_scans(plans) == []
    claims = {m for p in plans[:before_sweep] for m in INDEX_USE.findall(p)}
    assert "event_deliveries_due_by_project_idx" in claims and "event_deliveries_due_idx" not in claims, claims
    assert "event_deliveries_due_idx" in {m for p in sweep for m in INDEX_USE.findall(p)}
