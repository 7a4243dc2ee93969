"""The gradual cutover on the real database with the real agents: shadow runs
have no effect, the live share is deterministic and monotone, compare says
what agrees, rollback during a burst loses and doubles nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.events import EventType
from shared.notifiers import build_notifier
from shared.settings import Settings
from signalsloop.operations.compare import compare
from signalsloop.operations.rollout import rollback, rollout_status, set_rollout
from tests.fakes.slack_server import FakeSlackServer
from tests.functions.conftest import Pipeline, rows, users, vote
from tests.helpers import Seed

ANGRY = ("Export is completely broken", "Terrible. It crashes every time and I lost all my work. Awful, useless.")


@pytest.fixture
def slack(no_proxy: None) -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as fake:
        yield fake


@pytest.fixture
def slack_pipeline(pipeline: Pipeline, slack: FakeSlackServer) -> Pipeline:
    settings = Settings(slack_base_url=slack.api_base_url, slack_bot_token=None, slack_webhook_url=None)
    pipeline.deps._notifier_factory = lambda project: build_notifier(project, settings)
    return pipeline


def count(seed: Seed, sql: str, *params: Any) -> int:
    return int(rows(seed, sql, *params)[0]["n"])


def test_the_live_share_is_deterministic_monotone_and_close_to_the_asked_share(db: psycopg.Connection) -> None:
    ids = [uuid4() for _ in range(10_000)]
    bucket = "select id, rollout_bucket('sentiment', id) as b from unnest(%s::uuid[]) id"
    first = {r["id"]: r["b"] for r in db.execute(bucket, (ids,))}
    again = {r["id"]: r["b"] for r in db.execute(bucket, (ids,))}
    assert first == again and set(first.values()) <= set(range(100))
    live = {p: {i for i, b in first.items() if b < p} for p in (25, 50, 75, 100)}
    assert live[25] <= live[50] <= live[75] <= live[100] == set(ids), "raising the share only adds items"
    for p in (25, 50, 75):
        assert abs(len(live[p]) / len(ids) - p / 100) < 0.02
    other = {r["id"]: r["b"] for r in db.execute(bucket.replace("'sentiment'", "'duplicate'"), (ids,))}
    assert sum(first[i] == other[i] for i in ids) < 300, "each agent splits on its own"


def test_a_shadow_run_records_its_decision_and_has_no_effect(slack_pipeline: Pipeline, slack: FakeSlackServer,
                                                             seed: Seed, db: psycopg.Connection) -> None:
    for agent in ("sentiment", "notify"):
        set_rollout(db, agent, "shadow", by="test", reason="two weeks beside the old code")
    project = seed.project()
    seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                      "values (%s, 'xoxb-test', '#product')", (project,))
    post = seed.post(project, *ANGRY)
    vote(seed, post, users(seed, 10))
    (created,) = seed.events(EventType.FEEDBACK_CREATED)
    assert slack_pipeline.deliver("sentiment", created)["shadow"] is True
    assert slack_pipeline.deliver("notify", created)["status"] == "succeeded"
    assert count(seed, "select count(*) as n from sentiment_analysis") == 0
    assert seed.events(EventType.SENTIMENT_ANALYZED) == [] and seed.events(EventType.NOTIFICATION_SENT) == []
    assert slack.posted == [] and count(seed, "select count(*) as n from notifications") == 0
    shadow = {r["agent"]: r for r in rows(seed, "select * from shadow_results")}
    assert shadow["sentiment"]["decision"]["writes"][0]["rows"][0]["label"] == "negative"
    assert shadow["sentiment"]["model"] and shadow["sentiment"]["aggregate_id"] == post
    assert shadow["sentiment"]["decision"]["events"][0]["type"] == EventType.SENTIMENT_ANALYZED
    would = shadow["notify"]["decision"]
    assert would["messages"] or [w for w in would["writes"] if w["table"] == "notifications"], \
        "the notification it would have sent or recorded is kept"
    assert {d["shadow"] for d in seed.deliveries(event_id=created["id"]) if d["agent"] in shadow} == {True}
    health = {r["agent"]: r for r in rollout_status(db)}
    assert health["sentiment"]["shadow_runs"] == 1 and health["sentiment"]["live_runs"] == 0


def test_a_change_is_recorded_and_published(db: psycopg.Connection, seed: Seed) -> None:
    change = set_rollout(db, "sentiment", "live", 25, by="ana", reason="week 3")
    assert (change["from_mode"], change["to_mode"], change["to_percent"]) == ("live", "live", 25)
    (logged,) = rows(seed, "select * from rollout_changes")
    assert (logged["changed_by"], logged["from_percent"], logged["to_percent"], logged["reason"]) == \
        ("ana", 100, 25, "week 3")
    (event,) = seed.events(EventType.AGENT_ROLLOUT_CHANGED)
    assert event["payload"]["to_percent"] == 25 and event["id"] == logged["event_id"]


def test_an_agent_turned_off_keeps_its_deliveries_until_it_is_back(pipeline: Pipeline, seed: Seed,
                                                                   db: psycopg.Connection) -> None:
    set_rollout(db, "sentiment", "off", by="test")
    seed.post(seed.project(), "Love it")
    (created,) = seed.events(EventType.FEEDBACK_CREATED)
    assert pipeline.deliver("sentiment", created)["status"] == "off"
    (row,) = seed.deliveries(agent="sentiment")
    assert row["status"] == "pending" and row["attempts"] == 0
    set_rollout(db, "sentiment", "live", by="test")
    assert pipeline.deliver("sentiment", created)["status"] == "succeeded"


def test_live_25_sends_a_quarter_of_the_items_down_the_event_path(pipeline: Pipeline, seed: Seed,
                                                                  db: psycopg.Connection) -> None:
    set_rollout(db, "sentiment", "live", 25, by="test")
    project = seed.project()
    for n in range(40):
        seed.post(project, f"Feedback number {n}")
    for created in seed.events(EventType.FEEDBACK_CREATED):
        pipeline.deliver("sentiment", created)
    expected_live = {r["id"] for r in rows(seed, "select id from posts where rollout_bucket('sentiment', id) < 25")}
    live = {r["feedback_id"] for r in rows(seed, "select feedback_id from sentiment_analysis")}
    shadow = {r["aggregate_id"] for r in rows(seed, "select aggregate_id from shadow_results")}
    assert live == expected_live and shadow == {r["id"] for r in rows(seed, "select id from posts")} - live
    assert 0 < len(live) < 40


def test_compare_reports_agreements_and_disagreements(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    posts = [seed.post(project, f"Post {n}") for n in range(4)]
    shadow_labels = [("negative", -0.8), ("positive", 0.6), ("neutral", 0.0), ("positive", 0.9)]
    live_labels = [("negative", -0.6), ("positive", 0.7), ("negative", -0.3), ("positive", 0.8)]
    for post, (label, score), (live_label, live_score) in zip(posts, shadow_labels, live_labels, strict=True):
        decision = {"writes": [{"table": "sentiment_analysis", "rows": [
            {"feedback_id": str(post), "label": label, "score": score, "model": "offline"}]}]}
        event = rows(seed, "select id from events where aggregate_id = %s", post)[0]["id"]
        db.execute("insert into shadow_results (agent, project_id, aggregate_type, aggregate_id, event_id, "
                   "event_type, decision, model) values ('sentiment', %s, 'feedback', %s, %s, 'feedback.created', "
                   "%s, 'offline')", (project, post, event, Jsonb(decision)))
        db.execute("insert into sentiment_analysis (feedback_id, project_id, label, score, confidence, model) "
                   "values (%s, %s, %s, %s, 0.5, 'legacy-http/vader')", (post, project, live_label, live_score))
    report = compare(db, "sentiment", project)
    assert report["compared"] == 4 and report["label_agreement"] == 0.75
    assert report["score_correlation"] > 0.9
    assert report["disagreements"] == [{"item": str(posts[2]), "title": "Post 2", "shadow": "neutral",
                                        "live": "negative", "live_model": "legacy-http/vader"}]


def test_rollback_during_a_burst_loses_and_doubles_nothing(pipeline: Pipeline, seed: Seed,
                                                           db: psycopg.Connection) -> None:
    project = seed.project()
    for n in range(60):
        seed.post(project, f"Burst item {n}")
    events = seed.events(EventType.FEEDBACK_CREATED)
    halfway = threading.Event()

    def deliver_all(chunk: list[dict[str, Any]]) -> None:
        for i, row in enumerate(chunk):
            if i == len(chunk) // 2:
                halfway.set()
            pipeline.deliver("sentiment", row)

    threads = [threading.Thread(target=deliver_all, args=(events[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    halfway.wait(30)
    changed = rollback(db, by="on-call", reason="bad labels")
    assert "sentiment" in {c["agent"] for c in changed} and {c["to_mode"] for c in changed} == {"shadow"}
    # Committed by now: every claim from here on sees shadow.
    rolled_back_at = rows(seed, "select clock_timestamp() as t")[0]["t"]
    for t in threads:
        t.join()
    deliveries = seed.deliveries(agent="sentiment")
    assert {d["status"] for d in deliveries} == {"succeeded"} and {d["attempts"] for d in deliveries} == {1}
    live = [d for d in deliveries if not d["shadow"]]
    shadow = [d for d in deliveries if d["shadow"]]
    assert live and shadow and len(live) + len(shadow) == 60
    assert all(d["started_at"] <= rolled_back_at for d in live), "no live run claimed after the switch"
    analyzed = seed.events(EventType.SENTIMENT_ANALYZED)
    assert len(analyzed) == len(live) == count(seed, "select count(*) as n from sentiment_analysis")
    assert count(seed, "select count(*) as n from shadow_results where agent = 'sentiment'") == len(shadow)


@pytest.mark.parametrize("mode", ["live", "shadow"])
def test_notify_hears_a_rollout_change_and_records_nothing(slack_pipeline: Pipeline, slack: FakeSlackServer,
                                                           seed: Seed, db: psycopg.Connection, mode: str) -> None:
    """An operator's event carries no project: notify finishes it with nothing to
    record or send, live or in shadow (both used to die on a projects foreign key)."""
    set_rollout(db, "notify", mode, by="ops")
    set_rollout(db, "sentiment", "live", 25, by="ana", reason="week 3")
    (changed,) = [e for e in seed.events(EventType.AGENT_ROLLOUT_CHANGED) if e["payload"]["agent"] == "sentiment"]
    reply = slack_pipeline.deliver("notify", changed)
    assert (reply["code"], reply["status"]) == (200, "succeeded"), reply
    (delivery,) = seed.deliveries(event_id=changed["id"], agent="notify")
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("succeeded", 1, None)
    assert delivery["shadow"] is (mode == "shadow")
    assert count(seed, "select count(*) as n from notifications") == 0 and slack.posted == []
    assert count(seed, "select count(*) as n from shadow_results") == 0
