"""Sentiment agent: pure decide (table-driven, real offline analyzer) and one run
through the runtime on the real database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest

from functions.sentiment.agent import Context, decide
from shared.analyzers.offline import OfflineAnalyzer
from shared.events import CURRENT_VERSIONS, DomainEvent, EventType
from shared.feedback import feedback_text
from shared.ports import Sentiment
from tests.functions.conftest import FEEDBACK, PROJECT, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

TEXTS: dict[str, tuple[str, str]] = {
    "english negative": ("App crashes constantly", "Terrible, I lost all my work. Awful and useless."),
    "english positive": ("Love the new editor", "Great job, it is fast and beautiful!"),
    "empty": ("", ""),
    "huge": ("Long report", "lorem ipsum dolor " * 5600),
    "german": ("Die App stürzt ständig ab", "Schrecklich, ich habe alles verloren"),
    "japanese": ("アプリがクラッシュします", "保存できません"),
    "emoji only": ("🙂🙂🙂", ""),
}


def created(title: str, body: str, **payload: Any) -> DomainEvent:
    return make_event(EventType.FEEDBACK_CREATED, {"feedback_id": str(FEEDBACK), "title": title, "body": body,
                                                   **payload})


def context_for(event: DomainEvent, analyzer: OfflineAnalyzer) -> Context:
    """What SentimentAgent.load builds for feedback with no stored analysis yet."""
    text = feedback_text(event.payload)
    return Context(analyzer.sentiment([text])[0], len(text))


@pytest.mark.parametrize("case", list(TEXTS))
def test_any_text_gives_one_valid_row_and_one_analyzed_event(case: str, analyzer: OfflineAnalyzer) -> None:
    title, body = TEXTS[case]
    event = created(title, body, vote_count=3)
    context = context_for(event, analyzer)
    assert context.text_length == len(feedback_text(event.payload))

    decision = decide(event, context)

    (row,) = writes_to(decision, "sentiment_analysis")
    assert [w.on_conflict for w in decision.writes] == [("feedback_id",)]  # an upsert: re-analysis replaces
    s = context.sentiment
    assert row["feedback_id"] == FEEDBACK and row["project_id"] == PROJECT
    assert row["label"] == s.label and row["model"] == s.model == analyzer.model
    assert -1 <= row["score"] <= 1 and 0 <= row["confidence"] <= 1  # the table's check constraints
    assert row["score"] == pytest.approx(s.score, abs=1e-4) and row["source_event_id"] == event.id
    (out,) = decision.events
    assert out.type == EventType.SENTIMENT_ANALYZED and out.version == CURRENT_VERSIONS[out.type]
    assert (out.aggregate_type, out.aggregate_id) == ("feedback", FEEDBACK)
    assert out.payload["label"] == s.label and out.payload["score"] == row["score"]
    assert out.payload["vote_count"] == 3 and out.payload["trigger"] == EventType.FEEDBACK_CREATED
    assert_follows(out, event, "sentiment")


@pytest.mark.parametrize(("case", "label"), [("english negative", "negative"), ("english positive", "positive"),
                                              ("empty", "neutral"), ("german", "negative")])
def test_the_label_reflects_the_text(case: str, label: str, analyzer: OfflineAnalyzer) -> None:
    event = created(*TEXTS[case])
    (row,) = writes_to(decide(event, context_for(event, analyzer)), "sentiment_analysis")
    assert row["label"] == label
    assert (row["score"] < 0) if label == "negative" else (row["score"] > 0) if label == "positive" else True


def test_a_retry_publishes_the_same_event_id_and_another_cause_a_new_one(analyzer: OfflineAnalyzer) -> None:
    event = created(*TEXTS["english negative"])
    context = context_for(event, analyzer)
    first, again = decide(event, context), decide(event, context)
    assert first == again and first.events[0].id == again.events[0].id
    edited = make_event(EventType.FEEDBACK_UPDATED, dict(event.payload))
    assert decide(edited, context).events[0].id != first.events[0].id


def test_deep_in_a_chain_it_keeps_the_correlation_and_adds_one_hop() -> None:
    root = uuid4()
    event = make_event(EventType.FEEDBACK_UPDATED, {"title": "x"}, correlation_id=root, depth=3)
    ctx = Context(Sentiment(label="neutral", score=0.0, confidence=0.5, model="m"), 1)
    (out,) = decide(event, ctx).events
    assert out.correlation_id == root and out.depth == 4 and out.metadata.causation_id == event.id
    assert out.payload["vote_count"] == 0  # feedback.updated carries no vote count


# -- on the real database -------------------------------------------------------


def test_feedback_created_is_scored_and_analyzed_fans_out_to_its_subscribers(pipeline: Pipeline,
                                                                          seed: Seed) -> None:
    project = seed.project()
    post = seed.post(project, "The export is broken and useless", "It fails every single time. Awful.")
    (root,) = seed.events(EventType.FEEDBACK_CREATED)

    (reply,) = pipeline.run("sentiment", EventType.FEEDBACK_CREATED)

    assert reply["code"] == 200 and reply["status"] == "succeeded", reply
    (row,) = rows(seed, "select * from sentiment_analysis where feedback_id = %s", post)
    assert row["label"] == "negative" and row["source_event_id"] == root["id"]
    (analyzed,) = seed.events(EventType.SENTIMENT_ANALYZED)
    meta = analyzed["metadata"]
    assert analyzed["aggregate_id"] == post and analyzed["version"] == 2
    assert meta["causation_id"] == meta["correlation_id"] == str(root["id"]) and meta["depth"] == 1
    assert {d["agent"] for d in seed.deliveries(event_id=analyzed["id"])} == {"theme", "priority", "notify"}
    assert pipeline.deliver("sentiment", root)["status"] == "finished"
    assert len(seed.events(EventType.SENTIMENT_ANALYZED)) == 1


def test_replaying_an_agent_rebuilds_its_results_from_the_event_history(pipeline: Pipeline, seed: Seed) -> None:
    project = seed.project()
    for title in ("Love the new editor", "The app crashes on export", "Is there an API?"):
        seed.post(project, title)
    pipeline.run("sentiment", EventType.FEEDBACK_CREATED)
    before = rows(seed, "select feedback_id, label, score from sentiment_analysis order by feedback_id")
    seed.conn.execute("delete from sentiment_analysis")

    replayed = pipeline.store.rpc("replay_deliveries", {"p_agent": "sentiment", "p_project_id": project})
    replies = pipeline.run("sentiment", EventType.FEEDBACK_CREATED)

    assert replayed == 3 and all(r["status"] == "succeeded" for r in replies)
    assert rows(seed, "select feedback_id, label, score from sentiment_analysis order by feedback_id") == before
    assert len(seed.events(EventType.SENTIMENT_ANALYZED)) == 3, "the rebuild publishes nothing twice"


def test_a_status_only_edit_keeps_its_sentiment_and_publishes_nothing(pipeline: Pipeline, seed: Seed) -> None:
    project = seed.project()
    post = seed.post(project, "The app crashes on export")
    pipeline.run("sentiment", EventType.FEEDBACK_CREATED)
    seed.conn.execute("update posts set status = 'planned' where id = %s", (post,))

    (reply,) = pipeline.run("sentiment", EventType.FEEDBACK_UPDATED)

    assert reply["status"] == "succeeded" and reply["summary"] == {"skipped": "text unchanged"}
    assert len(seed.events(EventType.SENTIMENT_ANALYZED)) == 1


def test_a_late_retry_of_an_older_event_is_superseded(analyzer: OfflineAnalyzer) -> None:
    event = created("The app crashes", "")
    newer = event.created_at + timedelta(seconds=5) if event.created_at else None
    assert newer is not None
    decision = decide(event, Context(analyzer.sentiment(["The app crashes"])[0], 15, stored_at=newer))
    assert not decision.writes and not decision.events
    assert decision.summary == {"skipped": "a newer edit was already analysed"}
    same_time = decide(event, Context(analyzer.sentiment(["The app crashes"])[0], 15, stored_at=event.created_at))
    assert len(same_time.events) == 1, "a retry of the event that is stored still publishes (same id)"
