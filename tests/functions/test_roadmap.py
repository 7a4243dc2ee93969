"""Roadmap agent: pure decide (an item per approved spec with its target
date, roadmap.updated on status or date changes, a stall once per stall and
again only after progress, past the target date) and, on the real database,
the spec triggers (approved, updated, commented) driving it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from functions.roadmap.agent import MODEL, Context, decide
from shared.events import DomainEvent, EventType
from tests.functions.conftest import PROJECT, T0, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

SPEC = UUID("00000000-0000-4000-8000-0000000005ec")
DAY = timedelta(days=1)


def spec(status: str = "approved", content: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": SPEC, "project_id": PROJECT, "title": "Dark mode", "status": status, "content": content or {},
            "linked_url": None}


def spec_event(kind: str = EventType.SPEC_APPROVED, at: datetime = T0, **payload: Any) -> DomainEvent:
    return make_event(kind, {"spec_id": str(SPEC), **payload}, aggregate_type="spec", aggregate_id=SPEC, created_at=at)


def tick(at: datetime) -> DomainEvent:
    return make_event(EventType.CLOCK_TICK, {"at": at.isoformat()}, aggregate_type="clock", aggregate_id=PROJECT)


def item_after(decision: Any) -> dict[str, Any]:
    (item,) = writes_to(decision, "roadmap_items")
    return item


def test_an_approved_spec_becomes_an_item_with_a_default_target_date() -> None:
    event = spec_event()
    decision = decide(event, Context(spec(), None, target_days=30))
    item = item_after(decision)
    assert item["status"] == "approved" and item["target_date"] == (T0 + 30 * DAY).date()
    assert item["approved_at"] == T0 == item["last_progress_at"] and item["model"] == MODEL
    (out,) = decision.events
    assert out.type == EventType.ROADMAP_UPDATED and out.payload["created"] is True
    assert out.payload["changed"] == ["status", "target_date"]
    assert_follows(out, event, "roadmap")


@pytest.mark.parametrize(
    ("event", "new_spec", "changed"),
    [
        pytest.param(spec_event(EventType.SPEC_COMMENTED, T0 + DAY), spec(), [], id="a comment: progress only"),
        pytest.param(spec_event(EventType.SPEC_LINKED, T0 + DAY), spec(), [], id="a link: progress only"),
        pytest.param(spec_event(EventType.SPEC_UPDATED, T0 + DAY, changed=["status"]), spec("in_progress"),
                     ["status"], id="in progress"),
        pytest.param(spec_event(EventType.SPEC_UPDATED, T0 + DAY, changed=["content"]),
                     spec(content={"target_date": "2026-03-01"}), ["target_date"], id="a new target date"),
        pytest.param(spec_event(EventType.SPEC_COMPLETED, T0 + DAY), spec("completed"), ["status"], id="completed"),
    ],
)
def test_updates_on_status_or_date_and_progress_always(event: DomainEvent, new_spec: dict[str, Any],
                                                       changed: list[str]) -> None:
    first = item_after(decide(spec_event(), Context(spec(), None, target_days=30)))
    stalled = {**first, "stalled_at": T0 + 20 * DAY, "stall_reason": "no_progress", "stalls": 1}
    decision = decide(event, Context(new_spec, stalled, target_days=30))
    item = item_after(decision)
    assert [e.payload["changed"] for e in decision.events] == ([changed] if changed else [])
    assert item["last_progress_at"] == T0 + DAY and item["stalled_at"] is None, "progress ends the stall"
    assert item["stalls"] == 1 and decision.summary["resumed"] is True
    if new_spec["status"] == "completed":
        assert item["completed_at"] == T0 + DAY


@pytest.mark.parametrize("status", ["draft", "rejected"])
def test_specs_never_approved_are_not_on_the_roadmap(status: str) -> None:
    decision = decide(spec_event(EventType.SPEC_UPDATED), Context(spec(status), None))
    assert not decision.writes and "not on the roadmap" in decision.summary["skipped"]


def test_a_stall_that_resumes_and_stalls_again() -> None:
    item = item_after(decide(spec_event(), Context(spec(), None, target_days=60)))

    def run_tick(at: datetime, current: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        decision = decide(tick(at), Context(items=[current], stall_days=14))
        return decision, (item_after(decision) if decision.writes else current)

    quiet, item = run_tick(T0 + 14 * DAY, item)
    assert not quiet.events, "exactly 14 days without progress is not yet a stall"
    stalled, item = run_tick(T0 + 15 * DAY, item)
    (first,) = stalled.events
    assert first.type == EventType.ROADMAP_STALLED and first.payload["reason"] == "no_progress"
    assert first.payload["stall"] == 1 and item["stalled_at"] == T0 + 15 * DAY
    still, item = run_tick(T0 + 16 * DAY, item)
    assert not still.events and not still.writes, "once per stall"

    resumed = decide(spec_event(EventType.SPEC_COMMENTED, T0 + 17 * DAY), Context(spec(), item))
    item = item_after(resumed)
    assert item["stalled_at"] is None and not resumed.events
    early, item = run_tick(T0 + 30 * DAY, item)
    assert not early.events, "14 days after the progress, not after the first stall"
    again, item = run_tick(T0 + 31 * DAY + timedelta(seconds=1), item)
    (second,) = again.events
    assert second.payload["stall"] == 2 and second.id != first.id


def test_an_item_past_its_target_date_stalls_once_for_that_date() -> None:
    approved = spec(content={"target_date": "2026-01-20"})
    item = item_after(decide(spec_event(), Context(approved, None)))
    assert item["target_date"] == date(2026, 1, 20)
    on_the_day = decide(tick(datetime(2026, 1, 20, 23, 0, tzinfo=T0.tzinfo)), Context(items=[item]))
    assert not on_the_day.events
    late = decide(tick(datetime(2026, 1, 21, 0, 0, tzinfo=T0.tzinfo)), Context(items=[item]))
    (out,) = late.events
    assert out.payload["reason"] == "past_target_date" and out.payload["target_date"] == "2026-01-20"
    item = item_after(late)
    item = item_after(decide(spec_event(EventType.SPEC_COMMENTED, datetime(2026, 1, 22, tzinfo=T0.tzinfo)),
                             Context(approved, item)))
    after_progress = decide(tick(datetime(2026, 1, 23, tzinfo=T0.tzinfo)), Context(items=[item]))
    assert not after_progress.events, "a date already announced is not announced again"
    moved = item_after(decide(spec_event(EventType.SPEC_UPDATED, datetime(2026, 1, 23, tzinfo=T0.tzinfo),
                                         changed=["content"]),
                              Context(spec(content={"target_date": "2026-01-25"}), item)))
    (again,) = decide(tick(datetime(2026, 1, 26, tzinfo=T0.tzinfo)), Context(items=[moved])).events
    assert again.payload["target_date"] == "2026-01-25" and again.id != out.id


def test_completed_and_rejected_items_never_stall() -> None:
    item = item_after(decide(spec_event(), Context(spec(), None)))
    for status in ("completed", "rejected"):
        assert not decide(tick(T0 + 400 * DAY), Context(items=[{**item, "status": status}])).events


# -- on the real database -------------------------------------------------------


def test_spec_triggers_drive_the_roadmap_on_the_real_database(pipeline: Pipeline, seed: Seed) -> None:
    owner = seed.user()
    project = seed.project(owner=owner, roadmap_stall_days=7)
    spec_id = seed.conn.execute("insert into specs (project_id, title, content) values (%s, 'Dark mode', %s) "
                                "returning id", (project, Jsonb({"target_date": "2030-01-01"}))).fetchone()["id"]
    changes = [("update specs set content = %s where id = %s", (Jsonb({"problem": "draft edit"}), spec_id)),
               ("update specs set status = 'approved', content = %s where id = %s",
                (Jsonb({"target_date": "2030-01-01"}), spec_id)),
               ("update specs set status = 'in_progress' where id = %s", (spec_id,)),
               ("insert into spec_comments (spec_id, author_id, body) values (%s, %s, 'On it')", (spec_id, owner))]
    delivered: set[Any] = set()
    for statement, params in changes:  # each change reaches the agent before the next one is made
        seed.conn.execute(statement, params)
        for event in [e for e in seed.events() if e["type"].startswith("spec.") and e["id"] not in delivered]:
            assert pipeline.deliver("roadmap", event)["status"] == "succeeded"
            delivered.add(event["id"])
    kinds = [e["type"] for e in seed.events() if e["type"].startswith("spec.")]
    assert sorted(kinds) == sorted(["spec.updated", "spec.approved", "spec.updated", "spec.updated", "spec.commented"])
    assert [e["payload"]["changed"] for e in seed.events(EventType.SPEC_UPDATED)] == [
        ["content"], ["content"], ["status"]], "approval itself is spec.approved, not spec.updated"

    [item] = rows(seed, "select * from roadmap_items")
    assert (item["status"], item["target_date"], item["last_progress"]) == ("in_progress", date(2030, 1, 1),
                                                                             "comment")
    updated = seed.events(EventType.ROADMAP_UPDATED)
    assert [e["payload"]["status"] for e in updated] == ["approved", "in_progress"]

    tick_event = make_event(EventType.CLOCK_TICK, {"at": (item["last_progress_at"] + 8 * DAY).isoformat()},
                            aggregate_type="clock", aggregate_id=project, project_id=project, created_at=None)
    pipeline.store.publish([tick_event])
    [stored_tick] = seed.events(EventType.CLOCK_TICK)
    assert pipeline.deliver("roadmap", stored_tick)["status"] == "succeeded"
    [stalled] = seed.events(EventType.ROADMAP_STALLED)
    assert stalled["payload"]["reason"] == "no_progress" and stalled["aggregate_id"] == spec_id
    assert rows(seed, "select stalled_at from roadmap_items")[0]["stalled_at"] is not None


def test_members_comment_on_their_projects_specs_only(seed: Seed) -> None:
    alice, bob = seed.user(), seed.user()
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    specs = {p: seed.conn.execute("insert into specs (project_id, title) values (%s, 'S') returning id",
                                  (p,)).fetchone()["id"] for p in (mine, theirs)}

    def as_alice(statement: str, *params: Any) -> Any:
        seed.conn.execute("set local role authenticated")
        seed.conn.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{alice}"}}',))
        return seed.conn.execute(statement, params)

    with seed.conn.transaction():
        as_alice("insert into spec_comments (spec_id, author_id, body) values (%s, %s, 'Looks good')",
                 specs[mine], alice)
        assert [r["body"] for r in as_alice("select body from spec_comments")] == ["Looks good"]
        assert as_alice("select count(*) as n from roadmap_items").fetchone()["n"] == 0
    for statement, params in [("insert into spec_comments (spec_id, author_id, body) values (%s, %s, 'x')",
                               (specs[theirs], alice)),
                              ("insert into spec_comments (spec_id, author_id, body) values (%s, %s, 'x')",
                               (specs[mine], bob)),
                              ("update spec_comments set body = 'edited'", ()),
                              ("insert into roadmap_items (spec_id, project_id, title, status, last_progress_at, "
                               "last_progress, model) values (%s, %s, 'x', 'approved', now(), 'x', 'x')",
                               (specs[mine], mine))]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), seed.conn.transaction():
            as_alice(statement, *params)
    [commented] = seed.events(EventType.SPEC_COMMENTED)
    assert commented["metadata"]["user_id"] == str(alice) and commented["aggregate_id"] == specs[mine]
