"""Coalesced doorbells: a delivery whose agent is being drained, or whose
agent's ring is still on its way, is not rung (the drainer, or the request
that ring wakes, will take it), and nothing waits once the promise ends."""

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


def forget_rings(seed: Seed) -> None:
    """As if every ring had reached its request: only drainers count."""
    seed.conn.execute("delete from agent_drainers where delivery_id is not null")


def test_a_drained_agent_is_not_rung_until_the_drain_ends(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=1)
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    drainer = promise(store, "sentiment", None)
    forget_rings(seed)
    publish(store, project, "feedback.created", 2)
    assert ring_counts(seed, "sentiment") == [1, 0, 0], "the drainer will take them: no ring"
    waiting = seed.conn.execute(  # the hold: drain_budget_ms 5000 + coalesced_ring_after_ms 2000
        "select ring_after - now() between interval '6 seconds' and interval '7 seconds' as held "
        "from event_deliveries where agent = 'sentiment' and ring_count = 0").fetchall()
    assert [w["held"] for w in waiting] == [True, True], "if the drainer died, the sweep rings them after its hold"
    assert ring_counts(seed, "competitive") == [1, 1, 0], "another agent is rung (once: that ring covers the next)"
    assert store.end_drain(drainer, "sentiment", None, ring_next=False) == 0
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment") == [1, 0, 0, 1], "no promise left: rung again"


def test_rings_stop_only_at_max_drainers(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=2)
    project = seed.project()
    publish(store, project, "feedback.created", 12)  # a backlog of 11 behind the first drainer
    forget_rings(seed)
    promise(store, "sentiment", None)
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment")[-1] == 1, "one drainer of two, behind a backlog: still rung"
    forget_rings(seed)
    promise(store, "sentiment", None)
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment")[-1] == 0


def test_a_drainer_keeping_up_is_not_sent_help(store: PostgresStore, seed: Seed) -> None:
    """Fewer than ten due per drainer: another request would find nothing."""
    seed.configure(max_drainers=3)
    project = seed.project()
    publish(store, project, "feedback.created", 3)
    forget_rings(seed)
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
    seed.configure(max_drainers=1, coalesced_ring_after_ms=0, drain_budget_ms=0)  # a hold of 0
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
    assert ring_counts(seed, "theme") == [1, 1, 0], "the project's next one, rung (its fan-out had skipped it)"
    left = seed.conn.execute("select count(*) as n from agent_drainers where drainer = %s", (drainer,)).fetchone()
    assert left["n"] == 0


def test_a_ring_on_its_way_covers_its_agent_until_its_delivery_is_taken(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=1)
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    publish(store, project, "feedback.created", 2)
    assert ring_counts(seed, "sentiment") == [1, 0, 0], "the first ring's request will drain the others"
    held = seed.conn.execute("select bool_and(ring_after - now() > interval '6 seconds') as held "
                             "from event_deliveries where agent = 'sentiment' and ring_count = 0").fetchone()
    assert held["held"], "the fallback waits for that ring to arrive"
    claim = store.claim_next("sentiment", "w")  # a drainer takes the rung one first: the ring covers no more
    assert claim is not None and claim.claimed
    publish(store, project, "feedback.created", 1)
    assert ring_counts(seed, "sentiment")[-1] == 1


def test_rings_on_their_way_count_up_to_max_drainers(store: PostgresStore, seed: Seed) -> None:
    """The first ring covers the agent until ten are due per ring on its way;
    then a second is rung, and max_drainers (2) of them stop all others."""
    seed.configure(max_drainers=2)
    project = seed.project()
    publish(store, project, "feedback.created", 25)
    assert ring_counts(seed, "sentiment") == [1] + [0] * 9 + [1] + [0] * 14


def test_a_per_project_ring_covers_only_its_project(store: PostgresStore, seed: Seed) -> None:
    mine, other = seed.project(), seed.project()
    publish(store, mine, "sentiment.analyzed", 2)
    publish(store, other, "sentiment.analyzed", 1)
    by_project = [(d["project_id"], d["ring_count"]) for d in seed.deliveries(agent="theme")]
    assert by_project == [(mine, 1), (mine, 0), (other, 1)]


def test_a_ring_whose_hold_ended_covers_nothing(store: PostgresStore, seed: Seed) -> None:
    """A ring answered 401 or never sent: its delivery stays pending, but once
    its hold ends the next delivery is rung (and the sweep rings the first)."""
    seed.configure(max_drainers=1, coalesced_ring_after_ms=0, drain_budget_ms=0)
    project = seed.project()
    publish(store, project, "feedback.created", 2)
    assert ring_counts(seed, "sentiment") == [1, 1]


def test_rings_long_past_their_hold_are_cleared(store: PostgresStore, seed: Seed) -> None:
    project = seed.project()
    publish(store, project, "feedback.created", 1)
    seed.conn.execute("update agent_drainers set until = now() - interval '2 minutes'")
    stale = seed.conn.execute("select count(*) as n from agent_drainers").fetchone()["n"]
    publish(store, project, "feedback.created", 1)
    rows = seed.conn.execute("select agent, until > now() as live from agent_drainers").fetchall()
    assert stale > 0 and rows and all(r["live"] for r in rows), "the stale rows went, the new rings stayed"


def test_a_ring_that_arrived_covers_nothing_even_if_its_delivery_waits(store: PostgresStore, seed: Seed) -> None:
    """A per-project agent's ring answered 'busy' leaves its delivery pending;
    it must not go on covering the project once its drainer has ended."""
    project = seed.project()
    publish(store, project, "sentiment.analyzed", 1)
    drainer = promise(store, "theme", project)  # the project's queue is held
    [event] = publish(store, project, "sentiment.analyzed", 1)
    assert ring_counts(seed, "theme") == [1, 0], "covered by the drainer"
    seed.conn.execute(  # as if that delivery had been rung after all: its ring on its way
        "insert into agent_drainers (drainer, agent, project_id, until, delivery_id) "
        "select gen_random_uuid(), agent, project_id, now() + interval '7 seconds', id from event_deliveries "
        "where agent = 'theme' and status = 'pending'")
    busy = store.claim(event.id, "theme")
    assert busy.outcome == "busy"
    store.end_drain(drainer, "theme", project, ring_next=False)
    seed.conn.execute("update event_deliveries set status = 'succeeded' where agent = 'theme' and status = 'running'")
    publish(store, project, "sentiment.analyzed", 1)
    assert ring_counts(seed, "theme")[-1] == 1, "nothing on its way any more: the new one is rung"
