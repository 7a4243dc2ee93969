"""Spec writer agent: pure decide (one draft per theme, nothing when a spec
exists) and, on the real database, a theme's spec never drafted twice:
redelivery, replay, or two threshold events racing."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from functions.spec_writer.agent import NAME, Context, SpecWriterAgent, decide
from shared.analyzers.offline import OfflineAnalyzer
from shared.events import DomainEvent, EventMetadata, EventType
from shared.ports import FeedbackItem, SpecDraft
from shared.publish import stable_id
from tests.functions.conftest import PROJECT, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

THEME_ID = UUID(int=0x7E)
THEME = {"id": THEME_ID, "project_id": PROJECT, "name": "Dark Mode", "feedback_count": 3}
ITEMS = [FeedbackItem(id=UUID(int=i), title=t, body=b, votes=v) for i, (t, b, v) in enumerate([
    ("Please add dark mode", "The dashboard is too bright at night", 12),
    ("Dark mode for the dashboard", "My eyes hurt in the evening", 3),
    ("暗いテーマをお願いします", "", 0),
    ("Dark mode", "lorem ipsum " * 8000, 1),
], start=1)]


def crossed(theme_id: UUID = THEME_ID) -> DomainEvent:
    return make_event(EventType.THEME_THRESHOLD_REACHED, {"theme_id": str(theme_id), "name": "Dark Mode",
                                                          "feedback_count": 20, "threshold": 20},
                      aggregate_type="theme", aggregate_id=theme_id, depth=3)


@pytest.fixture(scope="module")
def draft(analyzer: OfflineAnalyzer) -> SpecDraft:
    return analyzer.draft_spec("Dark Mode", ITEMS)


def test_a_theme_over_its_threshold_gets_one_draft(draft: SpecDraft) -> None:
    event = crossed()
    decision = decide(event, Context(THEME, None, draft, len(ITEMS), 16))

    (spec,) = writes_to(decision, "specs")
    (write,) = decision.writes
    assert write.on_conflict == ("id",) and write.update is False  # never overwrites an edited draft
    assert spec["id"] == stable_id("spec", THEME_ID) and spec["theme_id"] == THEME_ID
    assert (spec["status"], spec["source"], spec["model"]) == ("draft", "agent", draft.model)
    assert 1 <= len(spec["title"]) <= 300 and spec["title"] == draft.title
    content = spec["content"]
    assert content["theme"] == "Dark Mode" and content["feedback_count"] == 4 and content["total_votes"] == 16
    assert {e["feedback_id"] for e in content["evidence"]} <= {str(i.id) for i in ITEMS}
    assert content["evidence"][0]["votes"] == 12  # most-voted evidence first
    assert all(len(e["quote"]) < 1000 for e in content["evidence"])  # the 96k-character body is quoted short
    (drafted,) = decision.events
    assert drafted.type == EventType.SPEC_AUTO_DRAFTED
    assert (drafted.aggregate_type, drafted.aggregate_id) == ("spec", spec["id"])
    assert drafted.payload["theme_id"] == str(THEME_ID) and drafted.payload["evidence_count"] == len(draft.evidence)
    assert_follows(drafted, event, NAME)


def test_the_spec_and_its_event_are_the_same_whatever_event_asks(draft: SpecDraft) -> None:
    """Once per theme: a replay or a second threshold event computes the same ids."""
    ctx = Context(THEME, None, draft, 4, 16)
    first, second = decide(crossed(), ctx), decide(crossed(), ctx)
    assert writes_to(first, "specs")[0]["id"] == writes_to(second, "specs")[0]["id"]
    assert first.events[0].id == second.events[0].id
    other = decide(crossed(UUID(int=0x7F)), Context({**THEME, "id": UUID(int=0x7F)}, None, draft, 4, 16))
    assert other.events[0].id != first.events[0].id


@pytest.mark.parametrize(
    ("ctx", "reason"),
    [
        pytest.param(Context(None, None, None, 0, 0), "theme no longer exists", id="theme deleted"),
        pytest.param(Context(THEME, {"id": stable_id("spec", THEME_ID), "title": "Dark mode"}, None, 0, 0),
                     "already drafted", id="spec exists"),
        pytest.param(Context(THEME, None, None, 0, 0), "already drafted", id="no draft loaded"),
    ],
)
def test_no_draft_no_event(ctx: Context, reason: str) -> None:
    decision = decide(crossed(), ctx)
    assert not decision.writes and not decision.events and reason in decision.summary["skipped"]


def test_a_long_title_is_clipped_to_the_column(draft: SpecDraft) -> None:
    long = draft.model_copy(update={"title": "T" * 1000})
    (spec,) = writes_to(decide(crossed(), Context(THEME, None, long, 4, 16)), "specs")
    assert spec["title"] == "T" * 300  # specs.title is 1..300 characters


# -- on the real database -------------------------------------------------------

DARK = ["Please add dark mode", "Please add a dark mode", "Please add dark mode!"]


def threshold_event(pipeline: Pipeline, seed: Seed) -> dict[str, Any]:
    """Run real posts through sentiment and theme until their theme crosses 3."""
    project = seed.project(theme_threshold=len(DARK))
    for title in DARK:
        seed.post(project, title, "The dashboard is too bright at night")
    pipeline.run("sentiment", EventType.FEEDBACK_CREATED)
    pipeline.run("theme", EventType.SENTIMENT_ANALYZED)
    (row,) = seed.events(EventType.THEME_THRESHOLD_REACHED)
    return row


def assert_one_spec(seed: Seed, theme_id: UUID) -> dict[str, Any]:
    (spec,) = rows(seed, "select * from specs")
    assert spec["theme_id"] == theme_id and spec["source"] == "agent" and spec["status"] == "draft"
    (drafted,) = seed.events(EventType.SPEC_AUTO_DRAFTED)
    assert drafted["aggregate_id"] == spec["id"]
    return spec


def test_redelivery_and_replay_never_draft_twice(pipeline: Pipeline, seed: Seed) -> None:
    event = threshold_event(pipeline, seed)

    first = pipeline.deliver("spec_writer", event)
    again = pipeline.deliver("spec_writer", event)
    assert pipeline.store.rpc("replay_event", {"p_event_id": event["id"], "p_agent": "spec_writer"}) == 1
    replayed = pipeline.deliver("spec_writer", event)

    assert (first["status"], first["published"]) == ("succeeded", 1), first
    assert again["status"] == "finished"
    assert replayed["status"] == "succeeded" and replayed["published"] == 0 and replayed["written"] == 0
    assert "already drafted" in replayed["summary"]["skipped"]
    spec = assert_one_spec(seed, event["aggregate_id"])
    assert spec["content"]["feedback_count"] == len(DARK) and len(spec["content"]["evidence"]) == len(DARK)


def test_two_threshold_events_racing_for_one_theme_draft_once(pipeline: Pipeline, seed: Seed) -> None:
    """Both load before either completes (so neither sees the other's spec)."""
    event = threshold_event(pipeline, seed)
    original = DomainEvent.from_record(event)
    twin = original.model_copy(update={"id": uuid4(), "metadata": EventMetadata(project_id=original.project_id)})
    assert pipeline.store.publish([twin]) == 1
    agent, store = SpecWriterAgent(), pipeline.store
    claims = [store.claim(e.id, NAME, "test") for e in (original, twin)]
    assert all(c.claimed for c in claims)
    decisions = [agent.decide(e, agent.load(e, pipeline.deps)) for e in (original, twin)]
    assert all(d.events for d in decisions)  # each would draft on its own ...

    done = [store.complete(c, d.writes, d.events) for c, d in zip(claims, decisions, strict=True)]

    assert all(d.completed for d in done) and [d.published for d in done] == [1, 0]  # ... but only one lands
    assert_one_spec(seed, original.aggregate_id)
