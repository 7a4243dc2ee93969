"""Idempotent publishing, loop limits and the circuit breaker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from shared.events import DomainEvent, EventMetadata
from shared.postgres_store import PostgresStore
from shared.publish import follow_on
from tests.helpers import Seed


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(db_url)
    yield s
    s.close()


def cause(project: UUID, depth: int = 0, correlation: UUID | None = None) -> DomainEvent:
    return DomainEvent(id=uuid4(), type="feedback.created", aggregate_type="feedback", aggregate_id=uuid4(),
                       metadata=EventMetadata(project_id=project, depth=depth, correlation_id=correlation))


def analyzed(root: DomainEvent) -> DomainEvent:
    return follow_on(root, agent="sentiment", event_type="sentiment.analyzed", aggregate_type="feedback",
                     aggregate_id=root.aggregate_id, payload={"label": "neutral"})


def test_a_follow_on_published_twice_exists_once(seed: Seed, store: PostgresStore) -> None:
    root = cause(seed.project())
    store.publish([root])
    assert store.publish([analyzed(root)]) == 1
    assert store.publish([analyzed(root)]) == 0, "a retry computes the same id and is ignored"
    [event] = seed.events("sentiment.analyzed")
    meta = event["metadata"]
    assert meta["causation_id"] == str(root.id) and meta["correlation_id"] == str(root.id)
    assert meta["depth"] == 1 and meta["producer"] == "sentiment"
    assert len(seed.deliveries(event_id=event["id"])) == 3  # theme, priority, notify


def test_depth_limit_stops_a_loop_and_records_it(seed: Seed, store: PostgresStore) -> None:
    seed.configure(max_depth=2)
    project = seed.project()
    deep = cause(project, depth=3, correlation=uuid4())
    store.publish([deep])
    deliveries = seed.deliveries(event_id=deep.id)
    assert deliveries and {d["status"] for d in deliveries} == {"blocked"}
    assert all("depth 3 exceeds max_depth 2" in d["last_error"] for d in deliveries)
    assert store.claim(deep.id, "sentiment").outcome == "finished"


def test_chain_limit_stops_a_runaway_chain(seed: Seed, store: PostgresStore) -> None:
    seed.configure(max_events_per_chain=3)
    project, chain = seed.project(), uuid4()
    events = [cause(project, correlation=chain) for _ in range(4)]
    for e in events:
        store.publish([e])
    statuses = [{d["status"] for d in seed.deliveries(event_id=e.id)} for e in events]
    assert statuses == [{"pending"}, {"pending"}, {"pending"}, {"blocked"}]
    assert "more than max_events_per_chain 3" in seed.deliveries(event_id=events[3].id)[0]["last_error"]


def test_circuit_breaker_parks_then_lets_one_trial_through_and_recovers(seed: Seed, store: PostgresStore) -> None:
    seed.configure(circuit_failure_threshold=2, circuit_cooldown_seconds=0.3, backoff_base_ms=60_000)
    project = seed.project()
    events = [cause(project) for _ in range(5)]
    store.publish(events)
    for e in events[:2]:
        store.fail(store.claim(e.id, "sentiment"), "upstream down", retriable=True)
    agent = seed.conn.execute("select * from agents where name = 'sentiment'").fetchone()
    assert agent["circuit_state"] == "open" and agent["consecutive_failures"] == 2
    assert store.claim(events[2].id, "sentiment").outcome == "parked"
    assert store.claim(events[3].id, "sentiment").outcome == "parked"
    time.sleep(0.35)
    trial = store.claim(events[2].id, "sentiment")
    assert trial.claimed, "one trial after the cool-down"
    assert store.claim(events[3].id, "sentiment").outcome == "parked", "only one trial at a time"
    waiting = seed.conn.execute("select ring_after > now() + interval '30 seconds' as later from event_deliveries "
                                "where event_id = %s and agent = 'sentiment'", (events[3].id,)).fetchone()
    assert waiting["later"], "parked during a trial: not rung again until the trial's lease is over"
    store.complete(trial, [], [])
    agent = seed.conn.execute("select * from agents where name = 'sentiment'").fetchone()
    assert agent["circuit_state"] == "closed" and agent["consecutive_failures"] == 0
    assert seed.deliveries(event_id=events[3].id, agent="sentiment")[0]["status"] == "pending"
    assert store.claim(events[3].id, "sentiment").claimed
    assert store.claim(events[4].id, "sentiment").claimed


def test_a_failed_trial_reopens_the_circuit(seed: Seed, store: PostgresStore) -> None:
    seed.configure(circuit_failure_threshold=1, circuit_cooldown_seconds=0.2, backoff_base_ms=60_000)
    project = seed.project()
    a, b = cause(project), cause(project)
    store.publish([a, b])
    store.fail(store.claim(a.id, "sentiment"), "down", retriable=True)
    time.sleep(0.25)
    trial = store.claim(b.id, "sentiment")
    assert trial.claimed
    store.fail(trial, "still down", retriable=True)
    agent = seed.conn.execute("select circuit_state from agents where name = 'sentiment'").fetchone()
    assert agent["circuit_state"] == "open"


def test_serialized_agent_takes_one_delivery_per_project_at_a_time(seed: Seed, store: PostgresStore) -> None:
    project = seed.project()
    first, second = cause(project), cause(project)
    store.publish([first, second])
    one = analyzed(first)
    two = analyzed(second)
    store.publish([one, two])
    running = store.claim(one.id, "theme")
    assert running.claimed
    assert store.claim(two.id, "theme").outcome == "busy"
    store.complete(running, [], [])
    assert store.claim(two.id, "theme").claimed


def test_an_expired_lease_counts_against_the_circuit(seed: Seed, store: PostgresStore) -> None:
    """A hung or killed function never answers: the breaker must still see it."""
    seed.configure(circuit_failure_threshold=2, lease_grace_ms=0, circuit_cooldown_seconds=60)
    seed.agent("sentiment", timeout_ms=100)
    project = seed.project()
    a, b = cause(project), cause(project)
    store.publish([a, b])
    assert store.claim(a.id, "sentiment").claimed
    time.sleep(0.15)
    assert store.claim(a.id, "sentiment").claimed  # the first attempt expired
    time.sleep(0.15)
    assert store.claim(a.id, "sentiment").claimed  # and the second
    agent = seed.conn.execute("select circuit_state, consecutive_failures from agents where name = 'sentiment'")
    assert agent.fetchone() == {"circuit_state": "open", "consecutive_failures": 2}
    assert store.claim(b.id, "sentiment").outcome == "parked"


def test_an_agent_turned_off_does_not_run_a_ring_already_in_flight(seed: Seed, store: PostgresStore) -> None:
    event = cause(seed.project())
    store.publish([event])
    seed.agent("sentiment", mode="off")
    assert store.claim(event.id, "sentiment").outcome == "off"
    seed.agent("sentiment", mode="live")
    assert store.claim(event.id, "sentiment").claimed
