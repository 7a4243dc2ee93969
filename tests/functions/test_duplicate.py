"""Duplicate agent: pure decide (candidates filtered by threshold, best first,
capped) and near-duplicates found through match_feedback on the real database."""

from __future__ import annotations

import json
import random
from typing import Any
from uuid import UUID

import pytest

from functions.duplicate.agent import MAX_CANDIDATES, Context, decide
from shared.analyzers.offline import OfflineAnalyzer
from shared.clustering import DEFAULT_DUPLICATE_THRESHOLD, cosine
from shared.events import DomainEvent, EventType
from shared.feedback import embedding_text
from shared.store import Write
from tests.functions.conftest import FEEDBACK, PROJECT, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

EMBEDDING = [0.6, 0.8, 0.0]


def uid(n: int) -> UUID:
    return UUID(int=n)


def created(title: str = "Dark mode please", body: str = "") -> DomainEvent:
    return make_event(EventType.FEEDBACK_CREATED, {"feedback_id": str(FEEDBACK), "title": title, "body": body})


def match(n: int, similarity: float) -> dict[str, Any]:
    return {"feedback_id": uid(n), "similarity": similarity, "title": f"post {n}"}


@pytest.mark.parametrize(
    ("matches", "threshold", "expected"),
    [
        pytest.param([], 0.86, [], id="no candidates"),
        pytest.param([match(1, 0.5), match(2, 0.85)], 0.86, [], id="all below the threshold"),
        pytest.param([match(1, 0.9), match(2, 0.97), match(3, 0.2), match(4, 0.93)], 0.86, [2, 4, 1],
                     id="below filtered, best first"),
        pytest.param([match(1, 0.86), match(2, 0.8599)], 0.86, [1], id="exactly at the threshold counts"),
        pytest.param([match(5, 0.9), match(3, 0.9), match(4, 0.95)], 0.5, [4, 3, 5], id="ties broken by id"),
        pytest.param([match(n, 0.9 + n / 1000) for n in range(1, 9)], 0.5, [8, 7, 6, 5, 4],
                     id="capped at the best few"),
        pytest.param([match(1, 0.7), match(2, 0.6)], 0.65, [1], id="project threshold honoured"),
    ],
)
def test_candidates_are_filtered_and_sorted(matches: list[dict[str, Any]], threshold: float,
                                            expected: list[int]) -> None:
    event = created()
    decision = decide(event, Context("emb-model", EMBEDDING, threshold, matches))

    (embedding,) = writes_to(decision, "feedback_embeddings")
    assert embedding == {"feedback_id": FEEDBACK, "project_id": PROJECT, "model": "emb-model", "dims": 3,
                         "embedding": EMBEDDING}
    pairs = writes_to(decision, "duplicates")
    assert [p["duplicate_of"] for p in pairs] == [uid(n) for n in expected]
    assert len(pairs) <= MAX_CANDIDATES
    assert all(p["feedback_id"] == FEEDBACK and p["source_event_id"] == event.id for p in pairs)
    if not expected:
        assert not decision.events and [w.table for w in decision.writes] == ["feedback_embeddings"]
        return
    (found,) = decision.events
    assert found.type == EventType.DUPLICATE_FOUND and found.aggregate_id == FEEDBACK
    cands = found.payload["candidates"]
    assert [c["feedback_id"] for c in cands] == [str(uid(n)) for n in expected]
    assert [c["similarity"] for c in cands] == sorted((c["similarity"] for c in cands), reverse=True)
    assert cands[0]["title"] == f"post {expected[0]}" and found.payload["threshold"] == threshold
    assert_follows(found, event, "duplicate")


def test_the_decision_does_not_depend_on_the_order_matches_arrive_in() -> None:
    event = created()
    matches = [match(n, s) for n, s in [(1, 0.91), (2, 0.99), (3, 0.95), (4, 0.2), (5, 0.91)]]
    first = decide(event, Context("m", EMBEDDING, 0.9, matches))
    for seed in range(5):
        shuffled = random.Random(seed).sample(matches, len(matches))
        again = decide(event, Context("m", EMBEDDING, 0.9, shuffled))
        assert again == first and again.events[0].id == first.events[0].id  # a retry publishes nothing new


@pytest.mark.parametrize(
    ("text", "existing", "should_match"),
    [
        ("Please add dark mode to the dashboard", "Please add a dark mode for the dashboard", True),
        ("Please add dark mode to the dashboard", "The app crashes when I upload a photo", False),
        ("", "Please add a dark mode for the dashboard", False),
        ("Die App stürzt beim Hochladen ab", "Die App stürzt beim Hochladen immer ab", True),
        ("x" * 100_000, "Please add a dark mode for the dashboard", False),
    ],
)
def test_real_embeddings_at_the_default_threshold(text: str, existing: str, should_match: bool,
                                                  analyzer: OfflineAnalyzer) -> None:
    """match_feedback's job done in Python with the real offline embeddings."""
    mine, theirs = analyzer.embed([text, existing])
    matches = [{"feedback_id": uid(1), "similarity": cosine(mine, theirs), "title": existing}]
    decision = decide(created(text), Context(analyzer.embedding_model, mine, DEFAULT_DUPLICATE_THRESHOLD, matches))
    assert (len(decision.events) == 1) is should_match
    assert writes_to(decision, "feedback_embeddings")[0]["dims"] == len(mine)


# -- on the real database -------------------------------------------------------


def test_a_near_identical_post_finds_the_first_through_match_feedback(pipeline: Pipeline, seed: Seed) -> None:
    project = seed.project()
    first = seed.post(project, "Please add dark mode", "The dashboard is too bright at night")
    unrelated = seed.post(project, "Export to CSV fails", "The download never starts")
    second = seed.post(project, "Please add a dark mode", "The dashboard is too bright at night")

    replies = pipeline.run("duplicate", EventType.FEEDBACK_CREATED)

    assert [r["status"] for r in replies] == ["succeeded"] * 3, replies
    assert [r["summary"]["duplicates"] for r in replies] == [0, 0, 1]
    pairs = rows(seed, "select feedback_id, duplicate_of, similarity from duplicates")
    assert [(p["feedback_id"], p["duplicate_of"]) for p in pairs] == [(second, first)]
    assert DEFAULT_DUPLICATE_THRESHOLD <= pairs[0]["similarity"] <= 1
    (found,) = seed.events(EventType.DUPLICATE_FOUND)
    assert found["aggregate_id"] == second
    assert [c["feedback_id"] for c in found["payload"]["candidates"]] == [str(first)]
    assert found["payload"]["candidates"][0]["title"] == "Please add dark mode"
    assert {d["agent"] for d in seed.deliveries(event_id=found["id"])} == {"priority", "notify"}
    stored = rows(seed, "select count(*) as n from feedback_embeddings")[0]["n"]
    assert stored == 3 and unrelated not in {p["duplicate_of"] for p in pairs}


def test_a_project_threshold_in_settings_is_used(pipeline: Pipeline, seed: Seed, analyzer: OfflineAnalyzer) -> None:
    """A paraphrase below the default threshold counts once the project lowers it
    (the threshold applies to the fused score the database computes)."""
    texts = ("Please add dark mode", "The dashboard is too bright at night"), ("Dark theme wanted", "My eyes hurt")
    vectors = analyzer.embed([embedding_text({"title": t, "body": b}) for t, b in texts])
    probe = seed.project()
    first, second = (seed.post(probe, t, b) for t, b in texts)
    _store_embeddings(seed, probe, analyzer.embedding_model, [first, second], vectors)
    (fused,) = rows(seed, "select score from match_feedback_hybrid(%s, %s, %s, %s::float8[], 5, 0)",
                    probe, second, analyzer.embedding_model, vectors[1])
    score = float(fused["score"])
    assert score < DEFAULT_DUPLICATE_THRESHOLD
    for threshold in (None, score - 0.01):
        project = seed.project() if threshold is None else seed.project(duplicate_threshold=threshold)
        for title, body in texts:
            seed.post(project, title, body)
    replies = pipeline.run("duplicate", EventType.FEEDBACK_CREATED)
    assert [r["summary"]["duplicates"] for r in replies] == [0, 0, 0, 0, 0, 1]  # probe, default, lowered
    (found,) = seed.events(EventType.DUPLICATE_FOUND)
    assert found["payload"]["threshold"] == pytest.approx(score - 0.01)


def _store_embeddings(seed: Seed, project: UUID, model: str, ids: list[UUID], vectors: list[list[float]]) -> None:
    rows = [{"feedback_id": i, "project_id": project, "model": model, "dims": len(v), "embedding": v}
            for i, v in zip(ids, vectors, strict=True)]
    seed.conn.execute("select apply_writes(%s::jsonb)",
                      (json.dumps([Write("feedback_embeddings", rows, ("feedback_id",)).to_json()]),))


def test_duplicate_context_reads_the_threshold_and_titles_of_its_project_only(
        seed: Seed, analyzer: OfflineAnalyzer) -> None:
    """The agent's one-call read (20261202001503): the project's
    duplicate_threshold when it has one (settings are checked to hold a
    number), else the default passed in; matches and their titles only from
    the given project."""
    texts = [("Please add dark mode", "The dashboard is too bright at night"),
             ("Dark mode please", "Too bright at night")]
    vectors = analyzer.embed([embedding_text({"title": t, "body": b}) for t, b in texts])
    model = analyzer.embedding_model
    ids: dict[UUID, list[UUID]] = {}

    def context(project: UUID, default: float) -> dict[str, Any]:
        (row,) = rows(seed, "select duplicate_context(%s, %s, %s, %s::float8[], 5, %s) as c",
                      project, ids[project][1], model, vectors[1], default)
        return dict(row["c"])

    def posts(project: UUID) -> UUID:
        ids[project] = [seed.post(project, t, b) for t, b in texts]
        _store_embeddings(seed, project, model, ids[project], vectors)
        return project

    plain, other = posts(seed.project()), posts(seed.project())
    (match,) = context(plain, 0.0)["matches"]
    assert (match["feedback_id"], match["title"]) == (str(ids[plain][0]), "Please add dark mode")
    score = float(match["score"])
    assert 0.1 < score < 0.99
    # No threshold of its own: the default decides, so it moves the cut.
    assert len(context(plain, score - 0.01)["matches"]) == 1
    assert context(plain, score + 0.01)["matches"] == []
    # Its own: the project's, whatever the default.
    strict = posts(seed.project(duplicate_threshold=round(score + 0.01, 4)))
    assert context(strict, 0.0)["matches"] == []
    assert context(strict, 0.0)["settings"]["duplicate_threshold"] == round(score + 0.01, 4)
    # Three projects hold the same two posts: each sees only its own.
    assert [m["feedback_id"] for m in context(other, 0.0)["matches"]] == [str(ids[other][0])]
