"""The doorbell is a wake-up: one request drains the agent's due deliveries,
runs on the event as stored in the ledger, and never trusts the body."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.agent import Decision, Deps
from shared.events import DomainEvent, EventMetadata
from shared.postgres_store import PostgresStore
from tests.helpers import Seed
from tests.shared.test_runtime import ScriptedAgent, auth, make_client, webhook


@dataclass
class RecordingAgent:
    """Writes nothing, publishes nothing; remembers which events it ran, in order."""

    name: str
    pause_s: float = 0.0
    ran: list[UUID] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, event: DomainEvent, deps: Deps) -> None:
        if self.pause_s:
            time.sleep(self.pause_s)

    def decide(self, event: DomainEvent, context: None) -> Decision:
        with self.lock:
            self.ran.append(event.id)
        return Decision()


def publish(store: PostgresStore, project: UUID, type_: str, n: int, **fields: Any) -> list[DomainEvent]:
    events = [DomainEvent(id=uuid4(), type=type_, aggregate_type="feedback", aggregate_id=uuid4(),
                          payload={"label": "negative", "score": -0.5, "confidence": 0.9, "model": "t"},
                          metadata=EventMetadata(project_id=project), **fields) for _ in range(n)]
    for event in events:  # one by one: ids in the ledger follow the list's order
        store.publish([event])
    return events


def body_for(seed: Seed, event: DomainEvent) -> dict[str, Any]:
    row = seed.conn.execute("select * from events where id = %s", (event.id,)).fetchone()
    return webhook(row)


@pytest.fixture
def store(db_url: str) -> Any:
    s = PostgresStore(db_url, max_size=8)
    yield s
    s.close()


def test_one_doorbell_drains_a_per_project_agent_in_order(store: PostgresStore, seed: Seed) -> None:
    project = seed.project()
    events = publish(store, project, "sentiment.analyzed", 50)
    agent = RecordingAgent("theme")
    reply = make_client(agent, store).post("/", json=body_for(seed, events[0]), headers=auth())
    assert reply.status_code == 200 and reply.json["status"] == "succeeded", reply.json
    assert reply.json["drained"] == 49
    assert agent.ran == [e.id for e in events], "the project's deliveries run one by one, in order"
    assert {d["status"] for d in seed.deliveries(agent="theme")} == {"succeeded"}


def test_a_per_project_drain_stays_in_its_project(store: PostgresStore, seed: Seed) -> None:
    mine, other = seed.project(), seed.project()
    events = publish(store, mine, "sentiment.analyzed", 3)
    theirs = publish(store, other, "sentiment.analyzed", 3)
    agent = RecordingAgent("theme")
    make_client(agent, store).post("/", json=body_for(seed, events[0]), headers=auth())
    assert agent.ran == [e.id for e in events]
    assert {d["status"] for d in seed.deliveries(agent="theme", project_id=other)} == {"pending"}
    assert theirs  # drained by a ring of their own project


def test_concurrent_requests_never_run_one_delivery_twice(store: PostgresStore, seed: Seed) -> None:
    events = publish(store, seed.project(), "feedback.created", 60)
    agent = RecordingAgent("sentiment", pause_s=0.005)
    client = make_client(agent, store)
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda e: client.post("/", json=body_for(seed, e), headers=auth()), events[:6]))
    assert all(r.status_code == 200 for r in replies), [r.json for r in replies]
    counts = Counter(agent.ran)
    assert set(counts) == {e.id for e in events} and set(counts.values()) == {1}
    assert sum(r.json.get("drained", 0) for r in replies) + sum(r.json["status"] == "succeeded" for r in replies) == 60
    attempts = seed.conn.execute("select count(*) as n from delivery_attempts a join event_deliveries d "
                                 "on d.id = a.delivery_id where d.agent = 'sentiment'").fetchone()
    assert attempts["n"] == 60


def test_a_non_serialized_drain_is_fair_across_projects(store: PostgresStore, seed: Seed) -> None:
    flood, small = seed.project(), seed.project()
    publish(store, flood, "feedback.created", 30)
    few = publish(store, small, "feedback.created", 2)
    seed.conn.execute("update event_deliveries set status = 'running', lease_until = now() + interval '1 minute' "
                      "where id = (select min(id) from event_deliveries where agent = 'sentiment' "
                      "and project_id = %s)", (flood,))
    claim = store.claim_next("sentiment", "w")
    assert claim is not None and claim.project_id == small, "the project with nothing in flight goes first"
    assert claim.event is not None and UUID(str(claim.event["id"])) == few[0].id


def test_a_time_budget_ends_the_drain_and_hands_on(store: PostgresStore, seed: Seed) -> None:
    seed.configure(drain_budget_ms=300)
    project = seed.project()
    events = publish(store, project, "sentiment.analyzed", 30)
    agent = RecordingAgent("theme", pause_s=0.02)
    client = make_client(agent, store)
    first = client.post("/", json=body_for(seed, events[0]), headers=auth())
    assert first.status_code == 200 and 1 <= first.json["drained"] < 29, first.json
    waiting = [d for d in seed.deliveries(agent="theme") if d["status"] == "pending"]
    assert [d["ring_count"] for d in waiting[:2]] == [1, 0], \
        "the fan-out rang only the first (its request drains the rest); the drain's end rang the next"
    # The sweep (or that ring) picks up the rest: keep ringing the head until done.
    for _ in range(40):
        head = [d for d in seed.deliveries(agent="theme") if d["status"] == "pending"]
        if not head:
            break
        event = next(e for e in events if e.id == head[0]["event_id"])
        client.post("/", json=body_for(seed, event), headers=auth())
    assert agent.ran == [e.id for e in events]


def test_a_tampered_body_runs_on_the_stored_event(store: PostgresStore, seed: Seed) -> None:
    mine, victim = seed.project(), seed.project()
    seed.post(mine, "Love the new editor")
    created = seed.events("feedback.created")[0]
    body = webhook(created)
    body["record"]["metadata"]["project_id"] = str(victim)
    body["record"]["payload"] = {"title": "forged", "body": "forged"}
    body["record"]["created_at"] = "2099-01-01T00:00:00+00:00"
    reply = make_client(ScriptedAgent(), store).post("/", json=body, headers=auth())
    assert reply.status_code == 200 and reply.json["status"] == "succeeded", reply.json
    rows = seed.conn.execute("select project_id from sentiment_analysis").fetchall()
    assert [r["project_id"] for r in rows] == [mine]
    published = seed.events("sentiment.analyzed")
    assert [e["metadata"]["project_id"] for e in published] == [str(mine)]


def test_an_event_newer_than_the_code_is_dead_lettered_not_processed(store: PostgresStore, seed: Seed) -> None:
    [event] = publish(store, seed.project(), "feedback.created", 1, version=99)
    agent = ScriptedAgent()
    reply = make_client(agent, store).post("/", json=body_for(seed, event), headers=auth())
    assert reply.status_code == 422 and reply.json["error"] == "unsupported_version", reply.json
    assert agent.loads == 0
    [row] = seed.deliveries(agent="sentiment")
    assert row["status"] == "dead" and "v99 is newer" in row["last_error"]
    assert seed.conn.execute("select consecutive_failures from agents where name = 'sentiment'").fetchone()[
        "consecutive_failures"] == 0, "one event's data does not count against the circuit"


def test_failures_of_one_projects_data_never_open_the_circuit(store: PostgresStore, seed: Seed) -> None:
    seed.configure(circuit_failure_threshold=2, backoff_base_ms=0)
    events = publish(store, seed.project(), "feedback.created", 4)
    agent = ScriptedAgent(raises=[ValueError("bad settings")] * 4)
    client = make_client(agent, store)
    for event in events:
        assert client.post("/", json=body_for(seed, event), headers=auth()).status_code == 500
    state = seed.conn.execute("select circuit_state from agents where name = 'sentiment'").fetchone()
    assert state["circuit_state"] == "closed"


@pytest.mark.parametrize(("body", "expected"), [
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"type":"INSERT","table":"events","schema":"public","record":' + b'{"a":' * 50_000 + b"1"
     + b"}" * 50_000 + b"}", ""),
    (b'{"type":"INSERT","table":"events","schema":"public","record":{"id":' + b"9" * 5000 + b"}}",
     "not valid JSON"),
    (b'\xff\xfe{"type":"INSERT"}', "not valid JSON"),
    (json.dumps({"type": "INSERT", "table": "events", "schema": "public", "record": []}).encode(), "record"),
])
def test_odd_bodies_get_a_400_json_error(store: PostgresStore, body: bytes, expected: str) -> None:
    reply = make_client(ScriptedAgent(), store).post(
        "/", data=body, headers={**auth(), "Content-Type": "application/json"})
    assert reply.status_code == 400, reply.data[:300]
    assert reply.is_json and reply.json["error"] == "bad_request"
    assert expected in reply.json["message"]


def test_the_largest_event_the_schema_allows_fits_the_body_limit(store: PostgresStore, seed: Seed) -> None:
    project = seed.project()
    post = seed.post(project, "t" * 500, "\U0001F600" * 20_000)
    created = next(e for e in seed.events("feedback.created") if e["aggregate_id"] == post)
    raw = json.dumps(webhook(created), ensure_ascii=False, separators=(",", ":"), default=str).encode()
    reply = make_client(ScriptedAgent(), store).post(
        "/", data=raw, headers={**auth(), "Content-Type": "application/json"})
    assert reply.status_code == 200 and reply.json["status"] == "succeeded", reply.json
    with pytest.raises(Exception, match="events_payload_size"):
        store.publish([DomainEvent(id=uuid4(), type="feedback.created", aggregate_type="feedback",
                                   aggregate_id=uuid4(), payload={"body": "x" * 300_000},
                                   metadata=EventMetadata(project_id=project))])


def test_a_lingering_drain_takes_what_arrives_meanwhile_unrung(store: PostgresStore, seed: Seed) -> None:
    seed.configure(max_drainers=1)
    project = seed.project()
    events = publish(store, project, "feedback.created", 2)
    agent = RecordingAgent("sentiment")
    client = make_client(agent, store, drain_linger_ms=1500)
    late: list[DomainEvent] = []

    def publish_later() -> None:
        time.sleep(0.5)
        late.extend(publish(store, project, "feedback.created", 1))

    writer = threading.Thread(target=publish_later)
    writer.start()
    reply = client.post("/", json=body_for(seed, events[0]), headers=auth())
    writer.join()
    assert reply.status_code == 200 and reply.json["drained"] == 2, reply.json
    assert agent.ran == [*(e.id for e in events), late[0].id]
    [row] = [d for d in seed.deliveries(agent="sentiment") if d["event_id"] == late[0].id]
    assert row["status"] == "succeeded" and row["ring_count"] == 0, "taken by the drain, never rung"
    drainers = seed.conn.execute("select count(*) as n from agent_drainers where delivery_id is null").fetchone()
    assert drainers["n"] == 0, "the drainer withdrew (rows of rings expire by themselves)"



def test_a_drain_working_a_stream_stays_to_the_end_of_its_budget(store: PostgresStore, seed: Seed) -> None:
    """Five runs or more: the request stays (polling) until its budget ends,
    so a post that comes long after the linger is still taken, unrung; a
    quiet request (one run) leaves after the linger."""
    seed.configure(max_drainers=1, drain_budget_ms=2500)
    project = seed.project()
    events = publish(store, project, "feedback.created", 6)
    agent = RecordingAgent("sentiment")
    client = make_client(agent, store, drain_linger_ms=100)
    late: list[DomainEvent] = []

    def publish_later() -> None:
        time.sleep(1.2)
        late.extend(publish(store, project, "feedback.created", 1))

    writer = threading.Thread(target=publish_later)
    writer.start()
    started = time.perf_counter()
    reply = client.post("/", json=body_for(seed, events[0]), headers=auth())
    took = time.perf_counter() - started
    writer.join()
    assert reply.status_code == 200 and reply.json["drained"] == 6, reply.json
    assert agent.ran[-1] == late[0].id
    [row] = [d for d in seed.deliveries(agent="sentiment") if d["event_id"] == late[0].id]
    assert row["ring_count"] == 0, "covered by the drainer: never rung"
    assert took >= 2.0, "it stayed until its budget"
    quiet = publish(store, project, "feedback.created", 1)
    started = time.perf_counter()
    assert client.post("/", json=body_for(seed, quiet[0]), headers=auth()).json["drained"] == 0
    assert time.perf_counter() - started < 1.5, "one run: it left after the linger"


class RacingStore(PostgresStore):
    """The real store; a post is published just before the drain withdraws,
    as a fan-out committing in that moment would be."""

    def __init__(self, url: str, project: UUID) -> None:
        super().__init__(url, max_size=8)
        self.project, self.raced = project, []

    def end_drain(self, drainer: UUID, agent: str, project_id: UUID | None, *, ring_next: bool) -> int:
        if not self.raced:
            self.raced.extend(publish(self, self.project, "feedback.created", 1))
        return super().end_drain(drainer, agent, project_id, ring_next=ring_next)


def test_a_delivery_skipped_while_the_drain_withdraws_is_taken_by_its_last_look(
        store: PostgresStore, db_url: str, seed: Seed) -> None:
    seed.configure(max_drainers=1)
    project = seed.project()
    events = publish(store, project, "feedback.created", 2)
    racing = RacingStore(db_url, project)
    try:
        agent = RecordingAgent("sentiment")
        reply = make_client(agent, racing, drain_linger_ms=0).post("/", json=body_for(seed, events[0]),
                                                                      headers=auth())
        assert reply.status_code == 200, reply.json
        late = racing.raced[0]
        assert agent.ran == [*(e.id for e in events), late.id], "the last claim after end_drain took it"
        [row] = [d for d in seed.deliveries(agent="sentiment") if d["event_id"] == late.id]
        assert row["ring_count"] == 0 and row["status"] == "succeeded", "skipped by the fan-out, run all the same"
    finally:
        racing.close()



def test_a_woken_request_drains_the_woken_project(store: PostgresStore, seed: Seed) -> None:
    """A wake (20261202001701_downstream_wake.sql) carries an upstream event
    the agent has no delivery for: it answers 'woken' and drains that project."""
    project, other = seed.project(), seed.project()
    upstream = publish(store, project, "feedback.created", 1)[0]
    events = publish(store, project, "sentiment.analyzed", 3)
    theirs = publish(store, other, "sentiment.analyzed", 2)
    seed.conn.execute("insert into agent_wakes (agent, project_id, until) values ('theme', %s, now() + "
                      "interval '5 seconds')", (project,))
    agent = RecordingAgent("theme")
    client = make_client(agent, store)
    reply = client.post("/", json=body_for(seed, upstream), headers=auth())
    assert reply.status_code == 200 and reply.json["status"] == "woken", reply.json
    assert reply.json["drained"] == 3 and agent.ran == [e.id for e in events]
    assert {d["status"] for d in seed.deliveries(agent="theme", project_id=other)} == {"pending"}
    assert theirs
    again = client.post("/", json=body_for(seed, upstream), headers=auth())
    assert again.status_code == 404 and again.json["error"] == "not_found", "the wake was taken"
