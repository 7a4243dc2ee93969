"""Wildcard subscriptions in the registry: '*' and 'prefix.*' in fan-out and
replay, through one matching function; a wildcard never brings an agent its
own events (notify does not hear its own notification.sent)."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
import pytest

from shared.events import DomainEvent, EventMetadata
from shared.postgres_store import PostgresStore
from tests.helpers import Seed


def event(project: UUID, type_: str, producer: str = "test") -> DomainEvent:
    eid = uuid4()
    return DomainEvent(id=eid, type=type_, aggregate_type=type_.split(".")[0], aggregate_id=uuid4(),
                       metadata=EventMetadata(project_id=project, producer=producer, correlation_id=eid))


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(db_url, max_size=2)
    yield s
    s.close()


def agents_for(seed: Seed, e: DomainEvent) -> list[str]:
    return sorted(d["agent"] for d in seed.deliveries(event_id=e.id))


@pytest.mark.parametrize(
    ("patterns", "type_", "agent", "producer", "expected"),
    [
        (["*"], "spec.approved", None, None, True),
        (["spec.*"], "spec.approved", None, None, True),
        (["spec.*"], "spec_quality.x", None, None, False),  # a prefix ends at the dot
        (["spec.*"], "specs.approved", None, None, False),
        (["spec.approved"], "spec.approved", None, None, True),
        (["spec.approved"], "spec.approve", None, None, False),
        (["feedback.*", "spec.linked"], "spec.linked", None, None, True),
        (["*"], "notification.sent", "notify", "notify", False),  # its own event, by wildcard
        (["notification.*"], "notification.sent", "notify", "notify", False),
        (["notification.sent"], "notification.sent", "notify", "notify", True),  # asked for by name
        (["*"], "notification.sent", "audit", "notify", True),
        ([], "spec.approved", None, None, False),
    ],
)
def test_the_matching_function(db: psycopg.Connection, patterns: list[str], type_: str, agent: str | None,
                               producer: str | None, expected: bool) -> None:
    row = db.execute("select public.subscribes(%s::text[], %s, %s, %s) as m",
                     (patterns, type_, agent, producer)).fetchone()
    assert row is not None and row["m"] is expected


def test_fan_out_delivers_wildcard_and_prefix_subscriptions(seed: Seed, store: PostgresStore) -> None:
    project = seed.project()
    seed.agent("roadmap", enabled=True, event_types=["spec.*"])
    brand_new = event(project, "billing.invoice_paid")
    approved = event(project, "spec.approved")
    store.publish([brand_new, approved])
    assert agents_for(seed, brand_new) == ["notify"]  # a type no migration ever named
    assert agents_for(seed, approved) == ["notify", "roadmap"]


def test_an_agent_never_hears_its_own_events_through_a_wildcard(seed: Seed, store: PostgresStore) -> None:
    project = seed.project()
    sent = event(project, "notification.sent", producer="notify")
    store.publish([sent])
    assert agents_for(seed, sent) == []
    seed.agent("competitive", enabled=True, event_types=["competitor.mentioned", "*"])
    mentioned = event(project, "competitor.mentioned", producer="competitive")
    store.publish([mentioned])
    assert agents_for(seed, mentioned) == ["competitive", "notify"]  # by name it still does


def test_replay_matches_wildcards_too(seed: Seed, store: PostgresStore) -> None:
    project = seed.project()
    approved = event(project, "spec.approved")
    own = event(project, "notification.sent", producer="notify")
    store.publish([approved, own])
    seed.agent("roadmap", enabled=True, event_types=["spec.*"])
    assert store.rpc("replay_deliveries", {"p_agent": "roadmap", "p_project_id": project}) == 1
    assert agents_for(seed, approved) == ["notify", "roadmap"]
    assert store.rpc("replay_event", {"p_event_id": own.id}) == 0
    assert agents_for(seed, own) == []


@pytest.mark.parametrize("bad", ["spec*", "*.approved", "Spec.*", "spec.", "**"])
def test_the_registry_refuses_malformed_patterns(seed: Seed, bad: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        seed.agent("roadmap", event_types=[bad])
