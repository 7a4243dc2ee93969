"""Theme agent: pure decide (new theme vs joining, the threshold announced once,
re-analysis keeps the theme) and the threshold crossed exactly once under
concurrent deliveries on the real database."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from functions.theme.agent import Context, decide
from shared import theme_space
from shared.analyzers.offline import OfflineAnalyzer
from shared.clustering import DEFAULT_THEME_THRESHOLD, cosine, update_centroid
from shared.events import DomainEvent, EventType
from shared.publish import stable_id
from signalsloop.operations.analyze import run_analyze
from tests.functions.conftest import FEEDBACK, PROJECT, T0, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

DARK = ["Please add dark mode to the dashboard", "Dark mode for the dashboard please",
        "I want a dark theme for the dashboard"]
CRASH = ["The app crashes when I upload a photo", "Uploading photos crashes the app"]
MODEL = "emb"
OTHER_THEME = UUID(int=0xD)


def analyzed(label: str = "negative", **kw: Any) -> DomainEvent:
    return make_event(EventType.SENTIMENT_ANALYZED, {"feedback_id": str(FEEDBACK), "label": label, "score": -0.5},
                      **kw)


def theme_row(theme_id: UUID, centroid: list[float], count: int, reached: datetime | None = None,
              name: str = "Dark Mode") -> dict[str, Any]:
    return {"id": theme_id, "project_id": PROJECT, "name": name, "embedding_model": MODEL, "centroid": centroid,
            "feedback_count": count, "threshold_reached_at": reached}


def context(embedding: list[float], themes: list[dict[str, Any]] | None = None, *, link: dict[str, Any] | None = None,
            threshold: int = 20, name: str | None = "New Theme", post: dict[str, Any] | None = None) -> Context:
    return Context(post or {"id": FEEDBACK, "title": "t"}, embedding, MODEL, themes or [], link,
                   DEFAULT_THEME_THRESHOLD, threshold, name)


@pytest.fixture(scope="module")
def vectors(analyzer: OfflineAnalyzer) -> dict[str, list[float]]:
    texts = [*DARK, *CRASH, "", "Die App stürzt beim Hochladen ab", "x" * 100_000]
    return dict(zip(texts, analyzer.embed(texts), strict=True))


def event_types(decision: Any) -> list[str]:
    return [e.type for e in decision.events]


@pytest.mark.parametrize("text", [DARK[0], "", "Die App stürzt beim Hochladen ab", "x" * 100_000])
def test_first_feedback_starts_a_theme(text: str, vectors: dict[str, list[float]],
                                       analyzer: OfflineAnalyzer) -> None:
    event = analyzed("neutral")
    name = analyzer.name_theme([text])
    decision = decide(event, context(vectors[text], name=name))

    (theme,) = writes_to(decision, "themes")
    assert theme["id"] == stable_id("theme", PROJECT, FEEDBACK)
    assert 1 <= len(theme["name"]) <= 120  # themes.name check constraint, even for a 100k-character post
    assert theme["centroid"] == vectors[text] and theme["embedding_model"] == MODEL
    (link,) = writes_to(decision, "theme_feedback")
    assert link == {"feedback_id": FEEDBACK, "theme_id": theme["id"], "project_id": PROJECT, "similarity": 1.0,
                    "sentiment_label": "neutral"}
    (detected,) = decision.events
    assert detected.type == EventType.THEME_DETECTED and detected.aggregate_id == theme["id"]
    assert detected.payload["feedback_count"] == 1 and detected.payload["feedback_id"] == str(FEEDBACK)
    assert_follows(detected, event, "theme")


def test_an_unnamed_theme_gets_a_placeholder_name(vectors: dict[str, list[float]]) -> None:
    (theme,) = writes_to(decide(analyzed(), context(vectors[DARK[0]], name=None)), "themes")
    assert theme["name"]


def test_similar_feedback_joins_the_nearest_theme_and_moves_its_centroid(vectors: dict[str, list[float]]) -> None:
    dark_id, crash_id = UUID(int=1), UUID(int=2)
    dark = update_centroid(vectors[DARK[0]], 1, vectors[DARK[1]])
    themes = [theme_row(crash_id, vectors[CRASH[0]], 7, name="Crashes"), theme_row(dark_id, dark, 2)]
    mine = vectors[DARK[2]]

    decision = decide(analyzed("positive"), context(mine, themes))

    (theme,) = writes_to(decision, "themes")
    assert theme["id"] == dark_id and theme["name"] == "Dark Mode"
    assert theme["centroid"] == update_centroid(dark, 2, mine)
    assert cosine(theme["centroid"], mine) > cosine(dark, mine)  # moved toward the newcomer
    (link,) = writes_to(decision, "theme_feedback")
    assert link["theme_id"] == dark_id and link["sentiment_label"] == "positive"
    assert link["similarity"] == pytest.approx(cosine(mine, dark), abs=1e-4)
    assert link["similarity"] >= DEFAULT_THEME_THRESHOLD
    (updated,) = decision.events
    assert updated.type == EventType.THEME_UPDATED and updated.payload["feedback_count"] == 3


def test_dissimilar_feedback_starts_its_own_theme(vectors: dict[str, list[float]]) -> None:
    themes = [theme_row(UUID(int=1), vectors[DARK[0]], 4)]
    decision = decide(analyzed(), context(vectors[CRASH[0]], themes, name="Photo Upload"))
    (theme,) = writes_to(decision, "themes")
    assert theme["id"] == stable_id("theme", PROJECT, FEEDBACK) and theme["name"] == "Photo Upload"
    assert event_types(decision) == [EventType.THEME_DETECTED]


def test_feedback_the_namer_calls_like_an_existing_theme_joins_it(vectors: dict[str, list[float]]) -> None:
    themes = [theme_row(UUID(int=1), vectors[DARK[0]], 2, name="Photo Upload")]
    decision = decide(analyzed(), context(vectors[CRASH[0]], themes, name=" photo upload "))
    assert [t["id"] for t in writes_to(decision, "themes")] == [UUID(int=1)]
    assert event_types(decision) == [EventType.THEME_UPDATED]


@pytest.mark.parametrize(
    ("count_before", "threshold", "reached", "announced"),
    [
        pytest.param(3, 5, None, False, id="one short"),
        pytest.param(4, 5, None, True, id="exactly at the threshold"),
        pytest.param(9, 5, None, True, id="over it, never announced (threshold lowered)"),
        pytest.param(4, 5, T0, False, id="already announced"),
        pytest.param(30, 5, T0, False, id="long past, already announced"),
        pytest.param(0, 1, None, True, id="threshold 1 on a brand-new theme"),
    ],
)
def test_the_threshold_is_announced_once(count_before: int, threshold: int, reached: datetime | None,
                                         announced: bool, vectors: dict[str, list[float]]) -> None:
    themes = [theme_row(UUID(int=1), vectors[DARK[0]], count_before, reached)] if count_before else []
    event = analyzed()
    decision = decide(event, context(vectors[DARK[1]], themes, threshold=threshold))

    crossed = [e for e in decision.events if e.type == EventType.THEME_THRESHOLD_REACHED]
    assert len(crossed) == int(announced)
    if not announced:
        assert all(w.get("threshold_reached_at") is None for w in writes_to(decision, "themes"))
        return
    (e,) = crossed
    assert e.payload["feedback_count"] == count_before + 1 and e.payload["threshold"] == threshold
    assert_follows(e, event, "theme")
    stamped = [w for w in writes_to(decision, "themes") if w.get("threshold_reached_at")]
    assert [w["id"] for w in stamped] == [e.aggregate_id] and stamped[0]["threshold_reached_at"] == T0
    # Once per theme per threshold, whatever event crosses it: a second crossing reuses the id.
    other = decide(analyzed(), context(vectors[DARK[1]], themes, threshold=threshold))
    assert [x.id for x in other.events if x.type == EventType.THEME_THRESHOLD_REACHED] == [e.id]


@pytest.mark.parametrize(("threshold", "reached"), [(20, None), (6, T0)], ids=["below", "already announced"])
def test_reanalysis_of_linked_feedback_keeps_its_theme(threshold: int, reached: datetime | None,
                                                       vectors: dict[str, list[float]]) -> None:
    """Even if the text now reads like another theme, and without counting it twice."""
    dark_id, crash_id = UUID(int=1), UUID(int=2)
    themes = [theme_row(dark_id, vectors[DARK[0]], 6, reached), theme_row(crash_id, vectors[CRASH[0]], 3)]
    link = {"feedback_id": FEEDBACK, "theme_id": dark_id, "similarity": 0.91}
    ctx = context(vectors[CRASH[1]], themes, link=link, threshold=threshold)
    event = analyzed("positive")

    decision = decide(event, ctx)

    assert writes_to(decision, "themes") == []  # centroid untouched, no threshold stamp
    (row,) = writes_to(decision, "theme_feedback")
    assert row["theme_id"] == dark_id and row["similarity"] == 0.91 and row["sentiment_label"] == "positive"
    (updated,) = decision.events
    assert updated.type == EventType.THEME_UPDATED and updated.payload["feedback_count"] == 6
    assert decide(event, ctx) == decision  # a retry is identical


def test_reanalysis_announces_a_threshold_never_announced(vectors: dict[str, list[float]]) -> None:
    """The count already includes the linked feedback: 6 of 6 crosses, with no +1."""
    themes = [theme_row(UUID(int=1), vectors[DARK[0]], 6)]
    link = {"feedback_id": FEEDBACK, "theme_id": UUID(int=1), "similarity": 0.91}
    decision = decide(analyzed(), context(vectors[DARK[1]], themes, link=link, threshold=6))
    assert event_types(decision) == [EventType.THEME_UPDATED, EventType.THEME_THRESHOLD_REACHED]
    assert decision.events[1].payload["feedback_count"] == 6
    decision = decide(analyzed(), context(vectors[DARK[1]], themes, link=link, threshold=7))
    assert event_types(decision) == [EventType.THEME_UPDATED]


@pytest.mark.parametrize(
    ("ctx_kwargs", "reason"),
    [
        pytest.param({"post": None}, "no longer exists", id="deleted post"),
        pytest.param({"link": {"feedback_id": FEEDBACK, "theme_id": OTHER_THEME}}, "another embedding model",
                     id="linked to a theme of another model"),
    ],
)
def test_nothing_is_written_when_there_is_nothing_to_do(ctx_kwargs: dict[str, Any], reason: str,
                                                        vectors: dict[str, list[float]]) -> None:
    ctx = context(vectors[DARK[0]], [theme_row(UUID(int=1), vectors[DARK[0]], 3)], **ctx_kwargs)
    if "post" in ctx_kwargs:
        ctx = Context(None, *list(vars(ctx).values())[1:])
    decision = decide(analyzed(), ctx)
    assert not decision.writes and not decision.events and reason in decision.summary["skipped"]


# -- on the real database -------------------------------------------------------

NEAR_IDENTICAL = ["Please add dark mode to the dashboard", "Please add a dark mode to the dashboard",
                  "Please add dark mode to the dashboard!", "please add dark mode to the dashboard",
                  "Please, add dark mode to the dashboard", "Please add dark mode to the dashboard.",
                  "Please add dark mode to the dashboard :)", "Please add dark mode on the dashboard"]


def test_a_theme_crosses_its_threshold_exactly_once_under_concurrent_deliveries(pipeline: Pipeline,
                                                                                seed: Seed) -> None:
    project = seed.project(theme_threshold=5)
    posts = [seed.post(project, title) for title in NEAR_IDENTICAL]
    assert all(r["status"] == "succeeded" for r in pipeline.run("sentiment", EventType.FEEDBACK_CREATED))
    analysed = seed.events(EventType.SENTIMENT_ANALYZED)
    assert len(analysed) == len(posts)

    rounds = pipeline.run_concurrently("theme", analysed)

    assert rounds > 1, "expected siblings to answer busy: the deliveries did not overlap"

    assert {d["status"] for d in seed.deliveries(agent="theme")} == {"succeeded"}
    (theme,) = rows(seed, "select * from themes")
    assert theme["feedback_count"] == len(posts) and theme["threshold_reached_at"] is not None
    links = rows(seed, "select feedback_id from theme_feedback where theme_id = %s", theme["id"])
    assert {r["feedback_id"] for r in links} == set(posts)
    (crossed,) = seed.events(EventType.THEME_THRESHOLD_REACHED)
    assert crossed["aggregate_id"] == theme["id"]
    assert crossed["payload"]["feedback_count"] == 5  # announced by the delivery that made it five
    assert len(seed.events(EventType.THEME_DETECTED)) == 1
    assert len(seed.events(EventType.THEME_UPDATED)) == len(posts) - 1
    assert {d["agent"] for d in seed.deliveries(event_id=crossed["id"])} == {"notify", "spec_writer"}

    # An edit re-analyses one post: it stays in its theme, nothing is counted or announced again.
    seed.conn.execute("update posts set body = 'Still waiting for this' where id = %s", (posts[0],))
    (edited,) = seed.events(EventType.FEEDBACK_UPDATED)
    assert pipeline.deliver("sentiment", edited)["status"] == "succeeded"
    reanalysed = seed.events(EventType.SENTIMENT_ANALYZED)[-1]
    assert reanalysed["metadata"]["causation_id"] == str(edited["id"])
    assert pipeline.deliver("theme", reanalysed)["summary"] == {"theme": theme["name"], "count": len(posts),
                                                                 "created": False}
    (after,) = rows(seed, "select feedback_count from themes where id = %s", theme["id"])
    assert after["feedback_count"] == len(posts)
    assert len(seed.events(EventType.THEME_THRESHOLD_REACHED)) == 1


MIXED = ["The app crashes when I upload a photo", "Please add dark mode to the dashboard",
         "Battery drains fast since the update", "Login fails with an error every morning",
         "Would love an export to CSV option", "It is so slow to load my reports",
         "Uploading photos crashes the app", "Dark mode for the dashboard please",
         "Great app, thank you", "The settings menu is confusing", "My password was shown in plain text",
         "Sync takes forever on mobile"]


def _partition(labels: list[Any]) -> list[int]:
    first: dict[Any, int] = {}
    return [first.setdefault(label, len(first)) for label in labels]


def test_online_themes_and_batch_themes_agree_on_the_same_input(pipeline: Pipeline, seed: Seed,
                                                                  analyzer: OfflineAnalyzer) -> None:
    """The theme agent, one delivery at a time, and `signalsloop analyze themes`
    over the same texts in the same order put them in the same groups."""
    project = seed.project()
    posts = [seed.post(project, title) for title in MIXED]
    assert all(r["status"] == "succeeded" for r in pipeline.run("sentiment", EventType.FEEDBACK_CREATED))
    assert all(r["status"] == "succeeded" for r in pipeline.run("theme", EventType.SENTIMENT_ANALYZED))
    linked = {r["feedback_id"]: r["theme_id"] for r in rows(seed, "select feedback_id, theme_id from theme_feedback")}
    online = _partition([linked[p] for p in posts])

    out = io.StringIO()
    lines = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(MIXED))
    assert run_analyze("themes", analyzer, io.StringIO(lines), out, io.StringIO(), progress=False) == 0
    batch = _partition([json.loads(line)["theme_id"] for line in out.getvalue().splitlines()])

    assert online == batch
    assert 1 < max(online) + 1 < len(MIXED)  # neither one theme nor one per item
    stored = rows(seed, "select distinct embedding_model from themes")
    assert [r["embedding_model"] for r in stored] == [theme_space.space_name(analyzer.embedding_model)]
