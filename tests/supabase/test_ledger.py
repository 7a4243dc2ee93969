"""The delivery ledger in SQL: claims, leases, backoff, dead letters, replay
and the sweep, against a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.errors import StoreError
from shared.events import DomainEvent, EventMetadata
from shared.postgres_store import PostgresStore
from shared.store import Claim
from tests.helpers import Seed


def root_event(project: UUID, type_: str = "feedback.created", **meta: Any) -> DomainEvent:
    eid = uuid4()
    return DomainEvent(id=eid, type=type_, aggregate_type="feedback", aggregate_id=uuid4(),
                       payload={"title": "x"}, metadata=EventMetadata(project_id=project, **meta))


@pytest.fixture
def store(db_url: str) -> Any:
    s = PostgresStore(db_url)
    yield s
    s.close()


def test_two_concurrent_claims_have_exactly_one_winner(db_url: str, seed: Seed, store: PostgresStore) -> None:
    event = root_event(seed.project())
    store.publish([event])
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def claim() -> None:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
            barrier.wait()
            row = conn.execute("select * from claim_delivery(%s, 'sentiment', 'w')", (event.id,)).fetchone()
            outcomes.append(row["outcome"])

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["claimed"] + ["duplicate"] * 7


def test_an_expired_lease_is_reclaimed(seed: Seed, store: PostgresStore) -> None:
    seed.agent("sentiment", timeout_ms=100)
    seed.configure(lease_grace_ms=0)
    event = root_event(seed.project())
    store.publish([event])
    first = store.claim(event.id, "sentiment", "crashed-worker")
    assert first.claimed and store.claim(event.id, "sentiment").outcome == "duplicate"
    time.sleep(0.25)
    second = store.claim(event.id, "sentiment", "new-worker")
    assert second.claimed and second.attempt == 2 and second.claim_token != first.claim_token
    stale = store.complete(first, [], [])
    assert not stale.completed, "the crashed worker's late answer must not finish the new attempt"
    assert store.complete(second, [], []).completed
    attempts = seed.conn.execute("select outcome from delivery_attempts order by id").fetchall()
    assert [a["outcome"] for a in attempts] == ["expired", "succeeded"]


def test_backoff_grows_then_the_last_attempt_dead_letters_and_replay_revives(
    seed: Seed, store: PostgresStore
) -> None:
    seed.configure(backoff_base_ms=40, backoff_max_ms=60_000)
    seed.agent("sentiment", max_attempts=4)
    event = root_event(seed.project())
    store.publish([event])
    delays = []
    for attempt in range(1, 5):
        claim = wait_for_claim(store, event.id)
        assert claim.attempt == attempt
        record = store.fail(claim, "boom", retriable=True)
        row = seed.deliveries(event_id=event.id, agent="sentiment")[0]
        if attempt < 4:
            assert record.status == "failed"
            delays.append((row["next_attempt_at"] - row["updated_at"]).total_seconds())
        else:
            assert record.status == "dead" and row["status"] == "dead" and row["last_error"] == "boom"
    assert delays[0] < delays[1] < delays[2], delays
    assert delays[2] >= 0.15
    assert store.claim(event.id, "sentiment").outcome == "finished"
    assert store.rpc("replay_dead", {"p_agent": "sentiment"}) == 1
    revived = seed.deliveries(event_id=event.id, agent="sentiment")[0]
    assert revived["status"] == "pending" and revived["attempts"] == 0 and revived["replay_count"] == 1
    assert store.claim(event.id, "sentiment").claimed


def wait_for_claim(store: PostgresStore, event_id: UUID) -> Claim:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        claim = store.claim(event_id, "sentiment")
        if claim.claimed:
            return claim
        assert claim.outcome == "not_due"
        time.sleep(0.01)
    raise AssertionError("delivery never became due")


def test_a_non_retriable_failure_dead_letters_at_once(seed: Seed, store: PostgresStore) -> None:
    event = root_event(seed.project())
    store.publish([event])
    claim = store.claim(event.id, "sentiment")
    assert store.fail(claim, "bad data", retriable=False).status == "dead"


def test_retry_after_is_honoured(seed: Seed, store: PostgresStore) -> None:
    event = root_event(seed.project())
    store.publish([event])
    store.fail(store.claim(event.id, "sentiment"), "429", retriable=True, retry_after=30)
    row = seed.deliveries(event_id=event.id, agent="sentiment")[0]
    assert (row["next_attempt_at"] - row["updated_at"]).total_seconds() >= 29.9


def test_replay_by_filter_and_its_errors(seed: Seed, store: PostgresStore) -> None:
    project = seed.project()
    events = [root_event(project) for _ in range(3)]
    store.publish(events)
    for e in events:
        store.complete(store.claim(e.id, "duplicate"), [], [])
    assert store.rpc("replay_deliveries", {"p_agent": "duplicate", "p_project_id": project}) == 3
    assert {d["status"] for d in seed.deliveries(agent="duplicate")} == {"pending"}
    assert store.rpc("replay_event", {"p_event_id": events[0].id}) == 5  # feedback.created's five subscribers
    with pytest.raises(StoreError, match="at least one filter"):
        store.rpc("replay_deliveries", {})
    with pytest.raises(StoreError, match="unknown event"):
        store.rpc("replay_event", {"p_event_id": uuid4()})


def test_replay_fans_out_to_agents_subscribed_since(seed: Seed, store: PostgresStore) -> None:
    seed.agent("engagement", enabled=False)  # feedback.commented's only subscriber, not yet enabled
    event = root_event(seed.project(), "feedback.commented")
    store.publish([event])
    assert [d["agent"] for d in seed.deliveries(event_id=event.id)] == ["notify"]  # notify hears '*'
    seed.agent("engagement", enabled=True)
    assert store.rpc("replay_event", {"p_event_id": event.id, "p_agent": "engagement"}) == 1
    assert sorted(d["agent"] for d in seed.deliveries(event_id=event.id)) == ["engagement", "notify"]


def test_the_sweep_rings_due_retries_and_unanswered_doorbells(db_url: str, seed: Seed, store: PostgresStore) -> None:
    seed.configure(backoff_base_ms=0, redelivery_after_seconds=0.05)
    event = root_event(seed.project())
    store.publish([event])
    store.fail(store.claim(event.id, "sentiment"), "boom", retriable=True)
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen signalsloop_doorbell")
        time.sleep(0.1)
        rung = store.rpc("sweep_deliveries", {"p_limit": 100})
        heard = [n.payload for n in listener.notifies(timeout=0.5, stop_after=rung)]
    assert rung == 5, "the due retry plus the four other subscribers' unanswered doorbells"
    assert sum('"agent" : "sentiment"' in h for h in heard) == 1
    assert store.rpc("sweep_deliveries", {"p_limit": 100}) == 0, "nothing is due again right away"


def test_a_sweep_with_nothing_due_stops_before_its_locking_query(seed: Seed) -> None:
    """Nothing due: no ring_doorbell() call (whose locking query PL/pgSQL would
    plan again on every sweep); something due: rung as before."""
    def doorbells_rung_by_a_sweep() -> tuple[int, int]:
        with seed.conn.transaction():
            seed.conn.execute("set local track_functions = 'pl'")
            rung = seed.conn.execute("select public.sweep_deliveries(500) as n").fetchone()["n"]
            calls = seed.conn.execute("select coalesce(sum(calls), 0) as n from pg_stat_xact_user_functions "
                                      "where funcname = 'ring_doorbell'").fetchone()["n"]
        return rung, calls

    seed.configure(redelivery_after_seconds=30)
    seed.post(seed.project(), "Dark mode please")
    assert doorbells_rung_by_a_sweep() == (0, 0), "just rung at insert: nothing due, no doorbell"
    seed.conn.execute("update event_deliveries set ring_after = now() - interval '1 minute' where agent = 'sentiment'")
    assert doorbells_rung_by_a_sweep() == (1, 1)


def test_an_agent_turned_offs_backlog_does_not_block_the_sweep_for_others(seed: Seed, store: PostgresStore) -> None:
    seed.configure(backoff_base_ms=0, redelivery_after_seconds=30)
    seed.agent("notify", mode="off")
    project = seed.project()
    events = [root_event(project) for _ in range(5)]
    store.publish(events)
    seed.conn.execute("update event_deliveries set ring_after = now() - interval '1 minute' where agent = 'notify'")
    store.fail(store.claim(events[0].id, "sentiment"), "boom", retriable=True)
    assert store.rpc("sweep_deliveries", {"p_limit": 3}) == 1, "the sentiment retry is rung despite 5 notify rows"
    assert {d["status"] for d in seed.deliveries(agent="notify")} == {"pending"}


def test_guarded_writes_never_let_an_older_event_overwrite_a_newer_result(seed: Seed, store: PostgresStore) -> None:
    project = seed.project()
    post = seed.post(project, "x")
    write = {"table": "sentiment_analysis", "on_conflict": ["feedback_id"], "update": True,
             "guard": "source_event_at"}

    def row(label: str, at: str) -> dict[str, Any]:
        return {"feedback_id": str(post), "project_id": str(project), "label": label, "score": 0,
                "confidence": 1, "model": "m", "source_event_at": at}

    store.rpc("apply_writes", {"p_writes": [{**write, "rows": [row("negative", "2026-01-02T00:00:00Z")]}]})
    store.rpc("apply_writes", {"p_writes": [{**write, "rows": [row("positive", "2026-01-01T00:00:00Z")]}]})
    assert seed.conn.execute("select label from sentiment_analysis").fetchone()["label"] == "negative"
    store.rpc("apply_writes", {"p_writes": [{**write, "rows": [row("neutral", "2026-01-03T00:00:00Z")]}]})
    assert seed.conn.execute("select label from sentiment_analysis").fetchone()["label"] == "neutral"


def test_replay_leaves_loop_protection_stops_alone_unless_asked(seed: Seed, store: PostgresStore) -> None:
    seed.configure(max_depth=1)
    project = seed.project()
    deep = root_event(project, depth=2)
    store.publish([deep])
    assert store.rpc("replay_deliveries", {"p_project_id": project}) == 0
    assert store.rpc("replay_deliveries", {"p_project_id": project, "p_statuses": ["blocked"]}) == 5


def test_permanent_failures_do_not_open_the_circuit(seed: Seed, store: PostgresStore) -> None:
    seed.configure(circuit_failure_threshold=2)
    events = [root_event(seed.project()) for _ in range(3)]
    store.publish(events)
    for e in events:
        store.fail(store.claim(e.id, "sentiment"), "malformed input", retriable=False)
    agent = seed.conn.execute("select circuit_state, consecutive_failures from agents where name = 'sentiment'")
    assert agent.fetchone() == {"circuit_state": "closed", "consecutive_failures": 0}
