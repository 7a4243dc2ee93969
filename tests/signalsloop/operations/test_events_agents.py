"""Operator queries against a real PostgreSQL: tail, publish, chain, replay and
agent health return the numbers the ledger holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from shared.errors import BadRequest, NotFound
from shared.events import DomainEvent, EventMetadata
from shared.postgres_store import PostgresStore
from shared.publish import follow_on
from signalsloop.operations.agents import agent_health
from signalsloop.operations.events import (
    EventFilter,
    EventTail,
    ReplayRequest,
    build_root_event,
    chain,
    nest,
    publish_event,
    replay,
)
from signalsloop.operations.query import parse_duration, parse_time, parse_uuid
from tests.helpers import Seed


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(db_url, max_size=1)
    yield s
    s.close()


def root(project: UUID, type_: str = "feedback.created") -> DomainEvent:
    eid = uuid4()
    return DomainEvent(id=eid, type=type_, aggregate_type="feedback", aggregate_id=uuid4(), payload={"title": "t"},
                       metadata=EventMetadata(project_id=project, correlation_id=eid, producer="test"))


def finish(conn: psycopg.Connection[Any], event_id: UUID, agent: str, *, ok: bool, ms: float = 0) -> None:
    """Claim the delivery, then complete it (taking ``ms``) or dead-letter it."""
    claim = conn.execute("select * from claim_delivery(%s, %s, 'test')", (event_id, agent)).fetchone()
    assert claim is not None and claim["outcome"] == "claimed"
    if ok:
        conn.execute("select complete_delivery(%s, %s)", (claim["delivery_id"], claim["claim_token"]))
        conn.execute("update delivery_attempts set finished_at = started_at + make_interval(secs => %s) "
                     "where claim_token = %s", (ms / 1000, claim["claim_token"]))
    else:
        conn.execute("select fail_delivery(%s, %s, 'boom', false)", (claim["delivery_id"], claim["claim_token"]))


# --- parsing ---------------------------------------------------------------------


def test_durations_and_times_parse_and_reject_nonsense() -> None:
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    now = datetime(2026, 11, 28, 12, tzinfo=UTC)
    assert parse_time("30s", now=now) == now - timedelta(seconds=30)
    assert parse_time("2026-11-28T10:00:00+00:00") == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert parse_time("2026-11-28T10:00").tzinfo is not None, "naive times are taken as local"
    with pytest.raises(BadRequest, match="duration 'ten minutes'"):
        parse_duration("ten minutes")
    # Times that leave the years 1-9999 once in UTC, and durations past any date, used to
    # raise OverflowError or ValueError later (clock tick published its tick first).
    for edge in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        with pytest.raises(BadRequest, match="outside the years 1 to 9999"):
            parse_time(edge)
    assert parse_time("9999-12-31T23:59:59+00:00").tzinfo == UTC
    with pytest.raises(BadRequest, match="too long"):
        parse_duration("99999999d")
    with pytest.raises(BadRequest, match="too long"):
        parse_time("99999999d", now=now)
    with pytest.raises(BadRequest, match="not a valid UUID"):
        parse_uuid("nope", "event id")


def test_root_event_validation_names_the_problem() -> None:
    project = str(uuid4())
    with pytest.raises(BadRequest, match="not valid JSON"):
        build_root_event("feedback.created", project, "{oops")
    with pytest.raises(BadRequest, match="must be a JSON object, not list"):
        build_root_event("feedback.created", project, "[1]")
    with pytest.raises(BadRequest, match=r"unknown event type 'made\.up'"):
        build_root_event("made.up", project, "{}")
    with pytest.raises(BadRequest, match="project id 'x' is not a valid UUID"):
        build_root_event("feedback.created", "x", "{}")
    with pytest.raises(BadRequest, match="not valid JSON here"):
        build_root_event("feedback.created", project, '{"n": 1' + "0" * 4300 + "}")
    with pytest.raises(BadRequest, match="nested deeper than 64 levels"):
        build_root_event("feedback.created", project, '{"a": ' + "[" * 900 + "]" * 900 + "}")
    assert build_root_event("feedback.created", project, '{"a": ' + "[" * 60 + "]" * 60 + "}").payload
    with pytest.raises(BadRequest, match="invalid event: type"):
        build_root_event("Not A Type", project, "{}", force=True)
    custom = build_root_event("custom.thing", project, '{"a": 1}', force=True)
    assert custom.aggregate_type == "custom" and custom.metadata.producer == "cli"
    assert custom.correlation_id == custom.id and custom.depth == 0


@pytest.mark.parametrize("payload, where", [
    ('{"title": "a\\u0000b"}', "payload.title"),
    ('{"tags": ["ok", "cut \\ud83d"]}', r"payload.tags\[1\]"),
    ('{"\\udc00": 1}', "a key in payload"),
])
def test_a_payload_jsonb_cannot_hold_is_refused_by_name(db: psycopg.Connection[Any], payload: str,
                                                       where: str) -> None:
    """JSON can write a NUL and a lone surrogate; ``jsonb`` refuses both, so the
    CLI names the field instead of failing in the database."""
    with pytest.raises(BadRequest, match=where):
        build_root_event("feedback.created", str(uuid4()), payload)
    with pytest.raises(psycopg.Error), db.transaction():
        db.execute("select %s::jsonb", (payload,))


def test_publish_requires_a_known_project_unless_forced(db: psycopg.Connection[Any], seed: Seed,
                                                        store: PostgresStore) -> None:
    stray = build_root_event("feedback.created", str(uuid4()), "{}")
    with pytest.raises(NotFound, match="unknown project"):
        publish_event(db, store, stray)
    assert publish_event(db, store, stray, force=True) == stray.id
    project = seed.project()
    ghost = build_root_event("feedback.created", str(project), '{"title": "Dark mode"}')
    with pytest.raises(NotFound, match=r"which project .* does not have"):
        publish_event(db, store, ghost)  # agents would dead-letter an event about no post
    event = build_root_event("feedback.created", str(project), '{"title": "Dark mode"}',
                             aggregate_id=str(seed.post(project)))
    publish_event(db, store, event)
    assert {d["agent"] for d in seed.deliveries(event_id=event.id)} == {"sentiment", "duplicate", "notify",
                                                                     "competitive", "engagement"}


# --- tail ------------------------------------------------------------------------


def test_tail_prints_the_backlog_then_only_new_matching_events(db: psycopg.Connection[Any], seed: Seed,
                                                               store: PostgresStore) -> None:
    project = seed.project()
    old = [root(project), root(project, "feedback.voted"), root(project)]
    for event in old:
        store.publish([event])
    tail = EventTail(db, EventFilter(types=("feedback.created",)))
    assert [r["id"] for r in tail.backlog(1)] == [old[2].id], "the latest only, when limited"
    assert tail.poll() == [], "nothing new yet, and the backlog is not repeated"
    fresh = root(project)
    store.publish([fresh, root(project, "feedback.voted")])
    [row] = tail.poll()
    assert row["id"] == fresh.id and row["producer"] == "test" and row["depth"] == 0
    assert row["project_id"] == str(project)
    assert tail.poll() == []
    other = EventTail(db, EventFilter(project=uuid4()))
    assert other.backlog(20) == []


# --- chain -----------------------------------------------------------------------


def test_chain_returns_events_by_depth_with_deliveries_and_nests_them(db: psycopg.Connection[Any], seed: Seed,
                                                                      store: PostgresStore) -> None:
    first = root(seed.project())
    store.publish([first])
    child = follow_on(first, agent="sentiment", event_type="sentiment.analyzed", aggregate_type="feedback",
                      aggregate_id=first.aggregate_id, payload={"label": "positive"})
    finish(db, first.id, "sentiment", ok=True, ms=120)
    store.publish([child])
    events = chain(db, str(first.id))
    assert [e["type"] for e in events] == ["feedback.created", "sentiment.analyzed"]
    sentiment = next(d for d in events[0]["deliveries"] if d["agent"] == "sentiment")
    assert sentiment["status"] == "succeeded" and sentiment["attempts"] == 1
    assert sentiment["duration_ms"] == pytest.approx(120, abs=1)
    assert {d["agent"] for d in events[1]["deliveries"]} == {"theme", "priority", "notify"}
    [tree] = nest(events)
    assert tree["id"] == first.id and [c["id"] for c in tree["children"]] == [child.id]
    assert [e["id"] for e in chain(db, str(child.id))] == [first.id, child.id], "any event id finds its chain"
    with pytest.raises(NotFound, match="no event has correlation id"):
        chain(db, str(uuid4()))


# --- replay ----------------------------------------------------------------------


def test_replay_dead_brings_dead_deliveries_back_to_pending(db: psycopg.Connection[Any], seed: Seed,
                                                            store: PostgresStore) -> None:
    event = root(seed.project())
    store.publish([event])
    finish(db, event.id, "sentiment", ok=False)
    assert seed.deliveries(event_id=event.id, agent="sentiment")[0]["status"] == "dead"
    assert replay(db, ReplayRequest(dead=True, agent="duplicate")) == 0
    assert replay(db, ReplayRequest(dead=True)) == 1
    [delivery] = seed.deliveries(event_id=event.id, agent="sentiment")
    assert delivery["status"] == "pending" and delivery["attempts"] == 0 and delivery["replay_count"] == 1


def test_replay_by_event_and_filters_and_its_errors(db: psycopg.Connection[Any], seed: Seed,
                                                    store: PostgresStore) -> None:
    project = seed.project()
    created, voted = root(project), root(project, "feedback.voted")
    store.publish([created, voted])
    assert replay(db, ReplayRequest(event=created.id, agent="sentiment")) == 1
    assert replay(db, ReplayRequest(type="feedback.voted")) == 3, "priority, engagement, and notify (which hears '*')"
    assert replay(db, ReplayRequest(project=project, start=datetime.now(UTC) - timedelta(minutes=5))) == 8, \
        "five subscribers of feedback.created, three of feedback.voted"
    with pytest.raises(BadRequest, match="replay needs at least one filter: --event, --dead"):
        replay(db, ReplayRequest())
    with pytest.raises(NotFound, match="unknown event"):
        replay(db, ReplayRequest(event=uuid4()))
    with pytest.raises(NotFound, match="unknown agent 'nobody'"):
        replay(db, ReplayRequest(dead=True, agent="nobody"))


# --- agent health ------------------------------------------------------------------


def test_agent_health_counts_rates_and_percentiles(db: psycopg.Connection[Any], seed: Seed,
                                                   store: PostgresStore) -> None:
    project = seed.project()
    events = [root(project) for _ in range(4)]
    store.publish(events)
    for event, ms in zip(events[:3], (100, 300, 200), strict=True):
        finish(db, event.id, "sentiment", ok=True, ms=ms)
    finish(db, events[3].id, "sentiment", ok=False)
    health = {r["agent"]: r for r in agent_health(db)}
    sentiment = health["sentiment"]
    assert (sentiment["total"], sentiment["succeeded"], sentiment["dead"], sentiment["pending"]) == (4, 3, 1, 0)
    assert sentiment["success_rate"] == pytest.approx(0.75)
    assert sentiment["p50_ms"] == pytest.approx(200, abs=0.5)
    assert sentiment["p95_ms"] == pytest.approx(290, abs=0.5)
    # a permanent failure (dead at once) is about its event, not the agent: no circuit count
    assert sentiment["consecutive_failures"] == 0 and sentiment["circuit_state"] == "closed"
    duplicate = health["duplicate"]
    assert duplicate["pending"] == 4 and duplicate["success_rate"] is None and duplicate["p50_ms"] is None
    assert duplicate["oldest_pending_s"] is not None and duplicate["oldest_pending_s"] >= 0
    assert health["roadmap"]["total"] == 0 and health["roadmap"]["enabled"] is True
    db.execute("update event_deliveries set created_at = now() - interval '2 hours' where agent = 'sentiment'")
    assert {r["agent"]: r["total"] for r in agent_health(db, timedelta(hours=1))}["sentiment"] == 0
