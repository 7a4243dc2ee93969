"""Priority agent: pure decide (score in [0, 100], monotone in each factor,
every component explained) and scores on the real database."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from functions.priority.agent import Context, decide
from shared.events import DomainEvent, EventType
from tests.functions.conftest import (
    FEEDBACK,
    PROJECT,
    T0,
    Pipeline,
    assert_follows,
    make_event,
    rows,
    users,
    vote,
    writes_to,
)
from tests.helpers import Seed

COMPONENTS = {"votes", "sentiment", "theme", "duplicates", "recency"}


def post(votes: int = 0, age_days: float = 0.0, title: str = "Export is broken") -> dict[str, Any]:
    return {"id": FEEDBACK, "project_id": PROJECT, "title": title, "vote_count": votes,
            "created_at": T0 - timedelta(days=age_days)}


def voted(created_at: datetime | None = T0) -> DomainEvent:
    return make_event(EventType.FEEDBACK_VOTED, {"feedback_id": str(FEEDBACK), "delta": 1, "vote_count": 3},
                      created_at=created_at)


def score(votes: int = 0, sentiment: float | None = None, theme: int = 0, duplicates: int = 0,
          age_days: float = 0.0) -> float:
    decision = decide(voted(), Context(post(votes, age_days), sentiment, theme, duplicates))
    return float(writes_to(decision, "priority_scores")[0]["score"])


def test_the_score_stays_within_0_and_100_everywhere() -> None:
    grid = itertools.product([0, 1, 10, 10_000], [None, -1.0, 0.0, 1.0], [0, 5, 1_000], [0, 2, 500],
                             [0.0, 14.0, 3650.0, -2.0])
    scores = [score(*args) for args in grid]
    assert all(0 <= s <= 100 for s in scores)
    assert max(scores) > 90 and min(scores) < 10  # and the range is actually used


@pytest.mark.parametrize(
    ("factor", "values"),
    [
        pytest.param("votes", [0, 1, 5, 20, 45], id="more votes"),
        pytest.param("sentiment", [1.0, 0.5, 0.0, -0.5, -1.0], id="more negative sentiment"),
        pytest.param("theme", [0, 1, 5, 19], id="bigger theme"),
        pytest.param("duplicates", [0, 1, 2, 4], id="more duplicates"),
        pytest.param("age_days", [365.0, 30.0, 7.0, 1.0, 0.0], id="more recent"),
    ],
)
def test_each_factor_raises_the_score(factor: str, values: list[Any]) -> None:
    scores = [score(**{factor: v}) for v in values]
    assert scores == sorted(scores) and len(set(scores)) == len(scores), scores


def test_unknown_sentiment_sits_between_positive_and_negative() -> None:
    assert score(sentiment=0.8) < score(sentiment=None) < score(sentiment=-0.8)


def test_every_component_is_explained_and_adds_up() -> None:
    event = voted()
    decision = decide(event, Context(post(votes=7, age_days=3), -0.4, 6, 1))

    (row,) = writes_to(decision, "priority_scores")
    parts = row["components"]
    assert set(parts) == COMPONENTS
    assert sum(p["weight"] for p in parts.values()) == pytest.approx(100)
    for p in parts.values():
        assert 0 <= p["value"] <= 1 and p["points"] == pytest.approx(p["weight"] * p["value"], abs=0.01)
    assert sum(p["points"] for p in parts.values()) == pytest.approx(row["score"], abs=0.05)
    assert parts["sentiment"]["value"] == pytest.approx(0.7)  # -0.4 is 70% of the way to "as negative as it gets"
    (out,) = decision.events
    assert out.type == EventType.PRIORITY_CALCULATED and out.aggregate_id == FEEDBACK
    assert out.payload["score"] == row["score"] and out.payload["components"] == parts
    assert out.payload["vote_count"] == 7 and out.payload["trigger"] == EventType.FEEDBACK_VOTED
    assert row["source_event_id"] == event.id and decision.writes[0].on_conflict == ("feedback_id",)
    assert row["model"] == out.payload["model"] == "priority-formula-1"
    assert_follows(out, event, "priority")
    assert decide(event, Context(post(votes=7, age_days=3), -0.4, 6, 1)) == decision  # retry-safe


def test_a_deleted_post_gets_no_score() -> None:
    decision = decide(voted(), Context(None, -1.0, 10, 3))
    assert not decision.writes and not decision.events and "no longer exists" in decision.summary["skipped"]


def test_without_an_event_time_the_post_counts_as_fresh() -> None:
    decision = decide(voted(created_at=None), Context(post(age_days=100), None, 0, 0))
    assert writes_to(decision, "priority_scores")[0]["components"]["recency"]["value"] == 1.0


# -- on the real database -------------------------------------------------------


def test_an_angry_much_voted_post_outranks_a_happy_new_one(pipeline: Pipeline, seed: Seed) -> None:
    project = seed.project()
    angry = seed.post(project, "Export is broken", "Terrible, it crashes and I lost all my work. Awful.")
    happy = seed.post(project, "Love the new editor", "Great job, it is fast!")
    vote(seed, angry, users(seed, 4))
    pipeline.run("sentiment", EventType.FEEDBACK_CREATED)

    replies = pipeline.run("priority", EventType.SENTIMENT_ANALYZED)

    assert [r["status"] for r in replies] == ["succeeded"] * 2, replies
    scores = {r["feedback_id"]: r for r in rows(seed, "select * from priority_scores")}
    assert 0 <= scores[happy]["score"] < scores[angry]["score"] <= 100
    assert set(scores[angry]["components"]) == COMPONENTS
    assert len(seed.events(EventType.PRIORITY_CALCULATED)) == 2

    before = scores[angry]["score"]
    vote(seed, angry, users(seed, 6))
    last_vote = seed.events(EventType.FEEDBACK_VOTED)[-1]
    assert pipeline.deliver("priority", last_vote)["status"] == "succeeded"
    (row,) = rows(seed, "select * from priority_scores where feedback_id = %s", angry)
    assert row["score"] > before and row["source_event_id"] == last_vote["id"]  # an upsert, recalculated
    assert row["components"]["votes"]["value"] > scores[angry]["components"]["votes"]["value"]


def test_load_reads_its_project_s_post_sentiment_theme_and_duplicates_in_one_call(pipeline: Pipeline,
                                                                                  seed: Seed) -> None:
    """priority_context: every factor's input from one round trip, the post's
    created_at as a datetime whichever store read it (recency is computed from
    it), and nothing of a post in another project."""
    from functions.priority.agent import PriorityAgent

    project, other_project = seed.project(), seed.project()
    mine, a, b = (seed.post(project, title) for title in ("Export is broken", "Export fails", "CSV export broken"))
    theirs = seed.post(other_project, "Secret roadmap")
    conn = seed.conn
    conn.execute("insert into sentiment_analysis (feedback_id, project_id, label, score, confidence, model)"
                 " values (%s, %s, 'negative', -0.75, 0.9, 'm')", (mine, project))
    theme = conn.execute("insert into themes (id, project_id, name, embedding_model, centroid, feedback_count)"
                         " values (gen_random_uuid(), %s, 'Export', 'm', '{1}', 0) returning id",
                         (project,)).fetchone()["id"]
    for member in (mine, a, b):  # the theme's count is kept by a trigger
        conn.execute("insert into theme_feedback (feedback_id, theme_id, project_id) values (%s, %s, %s)",
                     (member, theme, project))
    conn.execute("insert into duplicates (feedback_id, duplicate_of, project_id, similarity, model)"
                 " values (%s, %s, %s, 0.9, 'm'), (%s, %s, %s, 0.9, 'm')", (mine, a, project, b, mine, project))
    agent = PriorityAgent()
    found = agent.load(make_event(EventType.FEEDBACK_VOTED, {}, aggregate_id=mine, project_id=project), pipeline.deps)
    assert found.post is not None and found.post["title"] == "Export is broken"
    assert isinstance(found.post["created_at"], datetime)
    assert (found.sentiment_score, found.theme_size, found.duplicates) == (-0.75, 3, 2)
    elsewhere = agent.load(make_event(EventType.FEEDBACK_VOTED, {}, aggregate_id=theirs, project_id=project),
                           pipeline.deps)
    assert (elsewhere.post, elsewhere.sentiment_score, elsewhere.theme_size, elsewhere.duplicates) == (None, None, 0, 0)
