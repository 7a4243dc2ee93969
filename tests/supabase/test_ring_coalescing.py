"""Coalesced doorbells: a delivery whose agent is being drained is not rung
(the drainer promised to look again), and nothing waits once the promise ends."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.postgres_store import PostgresStore
from tests.helpers import Seed
from tests.shared.test_drain import publish


@pytest.fixture
def store(db_url: str) -> Any:
    s = PostgresStore(db_url, max_size=4)
    yield s
    s.close()


def ring_counts(seed: Seed, agent: str) -> list[int]:
    return [d["ring_count"] for d in seed.deliveries(agent=agent)]


def promise(store: PostgresStore, agent: str, project: UUID | None, hold_ms: int = 60_000) -> UUID:
    """A drainer registered by its first claim (of a delivery published for the purpose)."""
    drainer = uuid4()
    claim = store.claim_next(agent, "w", project, drainer=drainer, hold_ms=hold_ms)
    assert claim is not None and claim.claimed
    return drainer


def test_a_drained_agent_is_not_rung_until_the_drain_ends(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=1)
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    drainer = promise(store, "sentiment", None)
    publish(store, project, "feedback.created", 2)
    assert ring_counts(seed, "sentiment") == [1, 0, 0], "the drainer will take them: no ring"
    waiting = seed.conn.execute(
        "select ring_after - now() < interval '3 seconds' as soon from event_deliveries "
        "where agent = 'sentiment' and ring_count = 0").fetchall()
    assert [w["soon"] for w in waiting] == [True, True], "if the drainer died, the sweep rings them soon"
    assert ring_counts(seed, "competitive") == [1, 1, 1], "other agents are rung as before"
    assert store.end_drain(drainer, "sentiment", None, ring_next=False) == 0
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment") == [1, 0, 0, 1], "no promise left: rung again"


def test_rings_stop_only_at_max_drainers(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=2)
    project = seed.project()
    publish(store, project, "feedback.created", 2)
    promise(store, "sentiment", None)
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment")[-1] == 1, "one drainer of two: still rung"
    promise(store, "sentiment", None)
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment")[-1] == 0


def test_a_per_project_drainer_covers_only_its_project(store: PostgresStore, seed: Seed) -> None:
    mine, other = seed.project(), seed.project()
    publish(store, mine, "sentiment.analyzed", 1)
    promise(store, "theme", mine)
    seed.conn.execute("update event_deliveries set status = 'succeeded' where agent = 'theme'")
    publish(store, mine, "sentiment.analyzed", 1)
    publish(store, other, "sentiment.analyzed", 1)
    by_project = {d["project_id"]: d["ring_count"] for d in seed.deliveries(agent="theme") if d["status"] == "pending"}
    assert by_project == {mine: 0, other: 1}


def test_an_expired_drainer_does_not_stop_a_ring(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=1)
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    promise(store, "sentiment", None, hold_ms=0)  # died long ago, never ended
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment") == [1, 1]


def test_ending_a_drain_waits_for_the_fan_outs_that_counted_on_it(store: PostgresStore, seed: Seed,
                                                                 db_url: str) -> None:
    """The exact hand-over: a fan-out that skipped a ring because of a drainer
    commits before that drainer's end_drain() returns, so the request's last
    claim after it sees the delivery."""
    seed.configure(max_drainers=1)
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    drainer = promise(store, "sentiment", None)
    ended = threading.Event()
    with psycopg.connect(db_url) as writer:  # a transaction left open after its fan-out
        writer.execute("insert into events (id, type, aggregate_type, aggregate_id, payload, metadata) "
                       "values (%s, 'feedback.created', 'feedback', %s, '{}', %s)",
                       (uuid4(), uuid4(), Jsonb({"project_id": str(project)})))
        ender = threading.Thread(target=lambda: (store.end_drain(drainer, "sentiment", None, ring_next=False),
                                                 ended.set()))
        ender.start()
        assert not ended.wait(0.5), "end_drain waits while a fan-out that counted on the drainer is open"
        writer.commit()
    ender.join(10)
    assert ended.is_set()
    late = store.claim_next("sentiment", "w")
    assert late is not None and late.claimed, "the skipped delivery is there for the last claim"
    assert ring_counts(seed, "sentiment") == [1, 0]


def test_the_sweep_rings_what_a_dead_drainer_left(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=1, coalesced_ring_after_ms=0)
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    promise(store, "sentiment", None)  # and then the request dies: no end_drain
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment") == [1, 0]
    seed.conn.execute("select public.sweep_deliveries()")
    assert ring_counts(seed, "sentiment") == [1, 1]


def test_ending_a_drain_out_of_budget_rings_the_next(store: PostgresStore, seed: Seed) -> None:
    project = seed.project()
    publish(store, project, "sentiment.analyzed", 3)
    drainer = promise(store, "theme", project)
    seed.conn.execute("update event_deliveries set status = 'succeeded' where agent = 'theme' and status = 'running'")
    assert store.end_drain(drainer, "theme", project, ring_next=True) == 1
    assert ring_counts(seed, "theme")[1] == 2, "the project's next one, rung again"
    left = seed.conn.execute("select count(*) as n from agent_drainers where drainer = %s", (drainer,)).fetchone()
    assert left["n"] == 0
