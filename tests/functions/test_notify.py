"""Notify agent: pure importance and decide (urgent, recorded, rate-limited,
after_sending), and Slack through a fake Slack server on the real database:
one message per urgent post, never twice, retried once after a 500."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from functions.notify.agent import Context, NotifyAgent, decide, dedupe_key, importance
from shared.agent import MessageOutcome
from shared.analyzers.offline import OfflineAnalyzer
from shared.events import DomainEvent, EventType
from shared.ports import Message
from shared.postgres_store import PostgresStore
from tests.fakes.slack_server import POST_MESSAGE_PATH, FakeSlackServer
from tests.functions.conftest import (
    FEEDBACK,
    PROJECT,
    T0,
    Pipeline,
    assert_follows,
    delivery_status,
    make_event,
    rows,
    users,
    vote,
    writes_to,
)
from tests.helpers import Seed


def post(votes: int, title: str = "Export is broken") -> dict[str, Any]:
    return {"id": FEEDBACK, "project_id": PROJECT, "title": title, "vote_count": votes}


def ctx(post_row: dict[str, Any] | None = None, sentiment: dict[str, Any] | None = None,
        recent: list[int] | None = None, **settings: Any) -> Context:
    """``recent``: seconds ago of messages already sent in this project."""
    return Context(post_row, sentiment, settings, [T0 - timedelta(seconds=s) for s in recent or []], T0)


def analyzed(label: str, score: float) -> DomainEvent:
    return make_event(EventType.SENTIMENT_ANALYZED, {"feedback_id": str(FEEDBACK), "label": label, "score": score,
                                                     "vote_count": 0})


def theme_event(event_type: str, **payload: Any) -> DomainEvent:
    return make_event(event_type, payload, aggregate_type="theme", aggregate_id=UUID(int=0x7E))


@pytest.mark.parametrize(
    ("event", "context", "level", "says"),
    [
        pytest.param(analyzed("negative", -0.3), ctx(post(10)), "urgent", "10 votes", id="negative, 10 votes"),
        pytest.param(analyzed("negative", -0.3), ctx(post(9)), "low", "New feedback", id="negative, 9 votes"),
        pytest.param(analyzed("negative", -0.9), ctx(post(9)), "normal", "Strongly negative",
                     id="strongly negative, 9 votes"),
        pytest.param(analyzed("positive", 0.9), ctx(post(500)), "low", "Export is broken", id="positive, 500 votes"),
        pytest.param(make_event(EventType.FEEDBACK_CREATED, {"title": "Export is broken"}),
                     ctx(post(12), {"label": "negative", "score": -0.4}), "urgent", "12 votes",
                     id="created, sentiment already stored"),
        pytest.param(make_event(EventType.FEEDBACK_CREATED, {"title": "Export is broken"}), ctx(post(12)), "low",
                     "New feedback", id="created, sentiment not yet known"),
        pytest.param(make_event(EventType.DUPLICATE_FOUND, {"title": "A", "candidates": [
            {"title": "B", "similarity": 0.93}]}), ctx(post(0)), "normal", '"B" (0.93)', id="duplicate"),
        pytest.param(theme_event(EventType.THEME_THRESHOLD_REACHED, name="Dark Mode", feedback_count=20), ctx(),
                     "high", "Dark Mode", id="threshold reached"),
        pytest.param(make_event(EventType.SPEC_AUTO_DRAFTED, {"theme": "Dark Mode", "title": "Build: dark mode"},
                                aggregate_type="spec"), ctx(), "high", "Build: dark mode", id="spec drafted"),
        pytest.param(make_event(EventType.PRIORITY_CALCULATED, {"score": 85.2, "title": "Export"}), ctx(post(3)),
                     "high", "85/100", id="high priority"),
        pytest.param(make_event(EventType.PRIORITY_CALCULATED, {"score": 40, "title": "Export"}), ctx(post(3)),
                     "low", "40/100", id="low priority"),
        pytest.param(make_event(EventType.PRIORITY_CALCULATED, {"score": 55, "title": "Export"}),
                     ctx(post(11), {"label": "negative", "score": -0.5}), "urgent", "11 votes",
                     id="votes arrived after the analysis: the re-prioritisation finds it urgent"),
        pytest.param(make_event("billing.invoice_paid", {}, aggregate_type="billing"), ctx(), "low",
                     "billing.invoice_paid", id="anything else"),
    ],
)
def test_importance(event: DomainEvent, context: Context, level: str, says: str) -> None:
    got, text = importance(event, context)
    assert got == level and says in text


@pytest.mark.parametrize(
    ("event", "context", "sent"),
    [
        pytest.param(analyzed("negative", -0.3), ctx(post(10)), True, id="urgent is sent"),
        pytest.param(analyzed("negative", -0.3), ctx(post(1)), False, id="low is queued by default"),
        pytest.param(analyzed("negative", -0.9), ctx(post(1), notify_min_importance="normal"), True,
                     id="normal sent when the project asks for it"),
        pytest.param(analyzed("negative", -0.9), ctx(post(1), notify_min_importance="urgent"), False,
                     id="normal queued when only urgent is wanted"),
        pytest.param(theme_event(EventType.THEME_THRESHOLD_REACHED, name="Dark Mode"), ctx(), True,
                     id="high is sent by default"),
    ],
)
def test_what_is_sent_and_what_is_queued_for_the_digest(event: DomainEvent, context: Context, sent: bool) -> None:
    decision = decide(event, context)
    key = dedupe_key(event, context)
    if sent:
        (message,) = decision.messages
        assert not decision.writes and not decision.events  # notification.sent only after sending
        assert message.project_id == PROJECT and message.key == decide(event, context).messages[0].key
        assert message.importance == importance(event, context)[0]
        return
    assert not decision.messages and not decision.events
    (write,) = decision.writes
    assert write.table == "notifications" and write.on_conflict == ("dedupe_key",) and write.update is False
    (row,) = write.rows
    assert row["status"] == "queued" and row["dedupe_key"] == key and row["event_id"] == event.id
    assert row["importance"] == importance(event, context)[0] and row["text"]


@pytest.mark.parametrize(
    ("event", "recent", "outcome"),
    [
        pytest.param(theme_event(EventType.THEME_THRESHOLD_REACHED, name="X"), [1, 20, 59], "rate_limited",
                     id="high over the limit"),
        pytest.param(analyzed("negative", -0.3), [1, 20, 59], "sent", id="urgent bypasses the limit"),
        pytest.param(theme_event(EventType.THEME_THRESHOLD_REACHED, name="X"), [1, 20], "sent", id="under it"),
        pytest.param(theme_event(EventType.THEME_THRESHOLD_REACHED, name="X"), [1, 61, 300], "sent",
                     id="older sends leave the window"),
    ],
)
def test_the_rate_limit_records_instead_of_sending(event: DomainEvent, recent: list[int], outcome: str) -> None:
    decision = decide(event, ctx(post(10), recent=recent, slack_rate_per_minute=3))
    if outcome == "sent":
        assert len(decision.messages) == 1 and not decision.writes
        return
    assert not decision.messages and decision.summary["rate_limited"]
    (row,) = writes_to(decision, "notifications")
    assert row["status"] == "rate_limited" and row["importance"] == "high"


def test_a_deleted_post_is_not_notified_about() -> None:
    for event in (analyzed("negative", -0.9), make_event(EventType.FEEDBACK_CREATED, {"vote_count": 30})):
        decision = decide(event, ctx(None, notify_min_importance="low"))
        assert not decision.writes and not decision.messages and not decision.events


def test_one_urgent_alert_per_post_whichever_event_finds_it() -> None:
    created = make_event(EventType.FEEDBACK_CREATED, {"title": "Export is broken"})
    reanalysed = analyzed("negative", -0.5)
    context = ctx(post(10), {"label": "negative", "score": -0.5})
    keys = {decide(e, context).messages[0].key for e in (created, reanalysed, analyzed("negative", -0.7))}
    assert len(keys) == 1
    # Messages dedupe on what they say: the same theme and threshold, published
    # twice, is one message; another threshold is another message.
    again = [theme_event(EventType.THEME_THRESHOLD_REACHED, name="X", threshold=20) for _ in range(2)]
    assert len({decide(e, ctx()).messages[0].key for e in again}) == 1
    higher = theme_event(EventType.THEME_THRESHOLD_REACHED, name="X", threshold=40)
    assert decide(higher, ctx()).messages[0].key != decide(again[0], ctx()).messages[0].key


def test_after_sending_publishes_only_for_sent_unconfigured_or_unknown() -> None:
    event = analyzed("negative", -0.3)
    statuses = ["sent", "unconfigured", "failed", "unknown"]
    outcomes = [MessageOutcome(Message(key=f"k{i}", project_id=PROJECT, text="t", importance="urgent"), status,
                               "#product" if status == "sent" else None, "slack-web-api" if status == "sent" else None)
                for i, status in enumerate(statuses)]

    published = NotifyAgent().after_sending(event, outcomes)

    assert [e.payload["status"] for e in published] == ["sent", "unconfigured", "unknown"]
    assert [e.payload["dedupe_key"] for e in published] == ["k0", "k1", "k3"]
    assert published[0].payload["channel"] == "#product" and published[0].payload["about"] == event.type
    assert all(e.type == EventType.NOTIFICATION_SENT for e in published)
    assert len({e.id for e in published}) == 3
    assert [e.id for e in NotifyAgent().after_sending(event, outcomes)] == [e.id for e in published]
    for e in published:
        assert_follows(e, event, "notify")


# -- Slack, for real, through a fake Slack server -----------------------------------------

ANGRY = ("Export is completely broken", "Terrible. It crashes every time and I lost all my work. Awful, useless.")


def urgent_post(seed: Seed) -> UUID:
    """A project with Slack configured, and an angry post with 10 votes from 10 users."""
    project = seed.project()
    seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                      "values (%s, 'xoxb-test', '#product')", (project,))
    post_id = seed.post(project, *ANGRY)
    vote(seed, post_id, users(seed, 10))
    return post_id


def notifications(seed: Seed) -> list[dict[str, Any]]:
    return rows(seed, "select * from notifications order by created_at")


def test_an_urgent_post_sends_exactly_one_slack_message(slack_pipeline: Pipeline, slack: FakeSlackServer,
                                                        seed: Seed) -> None:
    urgent_post(seed)
    (created,) = seed.events(EventType.FEEDBACK_CREATED)
    assert slack_pipeline.deliver("sentiment", created)["summary"]["label"] == "negative"
    (analyzed_row,) = seed.events(EventType.SENTIMENT_ANALYZED)

    # Both subscriptions see an angry post with 10 votes (sentiment finished first).
    replies = [slack_pipeline.deliver("notify", row) for row in (created, analyzed_row)]

    assert all(r["status"] == "succeeded" for r in replies), replies
    (message,) = slack.posted
    assert message["channel"] == "#product" and "10 votes" in message["text"] and ANGRY[0] in message["text"]
    sent = [n for n in notifications(seed) if n["status"] == "sent"]
    assert len(sent) == 1 and sent[0]["importance"] == "urgent" and sent[0]["transport"] == "slack-web-api"
    assert sent[0]["response"]["ts"] and sent[0]["response"]["channel"] == "#product" and sent[0]["sent_at"]
    (announced,) = seed.events(EventType.NOTIFICATION_SENT)
    assert announced["payload"]["status"] == "sent" and announced["payload"]["channel"] == "#product"

    # The same webhooks again, and a replay: nothing more reaches Slack.
    assert [slack_pipeline.deliver("notify", r)["status"] for r in (created, analyzed_row)] == ["finished"] * 2
    assert slack_pipeline.store.rpc("replay_event", {"p_event_id": analyzed_row["id"], "p_agent": "notify"}) == 1
    assert slack_pipeline.deliver("notify", analyzed_row)["status"] == "succeeded"
    assert len(slack.posted) == 1 and len(seed.events(EventType.NOTIFICATION_SENT)) == 1


def test_a_slack_500_fails_the_delivery_and_the_retry_sends_once(slack_pipeline: Pipeline,
                                                                 slack: FakeSlackServer, seed: Seed) -> None:
    seed.configure(backoff_base_ms=0)
    urgent_post(seed)
    slack_pipeline.run("sentiment", EventType.FEEDBACK_CREATED)
    (row,) = seed.events(EventType.SENTIMENT_ANALYZED)
    slack.fail(500, "upstream exploded", path=POST_MESSAGE_PATH)

    failed = slack_pipeline.deliver("notify", row)

    assert failed["code"] == 503 and failed["status"] == "failed", failed
    assert delivery_status(seed, row["id"], "notify")["status"] == "failed"
    (note,) = notifications(seed)
    assert note["status"] == "failed" and "500" in note["error"]
    assert seed.events(EventType.NOTIFICATION_SENT) == []

    retried = slack_pipeline.deliver("notify", row)

    assert retried["status"] == "succeeded" and retried["attempt"] == 2, retried
    assert len(slack.posted) == 2  # the refused attempt and the one retry
    (note,) = notifications(seed)
    assert note["status"] == "sent" and note["error"] is None
    assert len(seed.events(EventType.NOTIFICATION_SENT)) == 1
    assert slack_pipeline.deliver("notify", row)["status"] == "finished" and len(slack.posted) == 2


def test_without_slack_a_message_is_recorded_as_unconfigured(pipeline: Pipeline, seed: Seed) -> None:
    project = seed.project()
    post_id = seed.post(project, *ANGRY)
    vote(seed, post_id, users(seed, 10))
    pipeline.run("sentiment", EventType.FEEDBACK_CREATED)
    (row,) = seed.events(EventType.SENTIMENT_ANALYZED)
    assert pipeline.deliver("notify", row)["status"] == "succeeded"
    (note,) = notifications(seed)
    assert (note["status"], note["transport"]) == ("unconfigured", "none")
    (announced,) = seed.events(EventType.NOTIFICATION_SENT)
    assert announced["payload"]["status"] == "unconfigured"


def test_low_importance_feedback_is_queued_not_sent(slack_pipeline: Pipeline, slack: FakeSlackServer,
                                                      seed: Seed) -> None:
    project = seed.project()
    seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                      "values (%s, 'xoxb-test', '#product')", (project,))
    seed.post(project, "Love the new editor", "Great work")
    assert slack_pipeline.run("notify", EventType.FEEDBACK_CREATED)[0]["status"] == "succeeded"
    (note,) = notifications(seed)
    assert note["status"] == "queued" and note["importance"] == "low"
    assert slack.posted == [] and seed.events(EventType.NOTIFICATION_SENT) == []


def test_a_slack_timeout_is_never_sent_again(store: PostgresStore, seed: Seed, analyzer: OfflineAnalyzer,
                                             slack: FakeSlackServer) -> None:
    """No answer from Slack may mean it posted: the message is marked unknown,
    the delivery completes, and neither a redelivery nor a replay re-sends."""
    from shared.notifiers.slack import SlackNotifier
    from tests.fakes import Canned

    def quick_notifier(project: Any) -> SlackNotifier:
        return SlackNotifier(bot_token="xoxb-test", channel="#product", base_url=slack.api_base_url, timeout_s=0.3)

    pipeline = Pipeline(store, seed, analyzer, quick_notifier)
    urgent_post(seed)
    pipeline.run("sentiment", EventType.FEEDBACK_CREATED)
    (row,) = seed.events(EventType.SENTIMENT_ANALYZED)
    slack.enqueue(Canned(200, {"ok": True, "channel": "C1", "ts": "1.0"}, delay=1.0), path=POST_MESSAGE_PATH)

    first = pipeline.deliver("notify", row)

    assert first["status"] == "succeeded", first
    (note,) = notifications(seed)
    assert note["status"] == "unknown" and "may have posted" in note["error"]
    (announced,) = seed.events(EventType.NOTIFICATION_SENT)
    assert announced["payload"]["status"] == "unknown"
    assert store.rpc("replay_event", {"p_event_id": row["id"], "p_agent": "notify"}) == 1
    assert pipeline.deliver("notify", row)["status"] == "succeeded"
    assert len(slack.requests_to(POST_MESSAGE_PATH)) == 1, "one request ever left for that key"
    assert len(seed.events(EventType.NOTIFICATION_SENT)) == 1


def test_a_high_priority_is_announced_once_per_item_not_once_per_vote() -> None:
    votes = [make_event(EventType.PRIORITY_CALCULATED, {"score": 80 + i, "title": "Export"}) for i in range(3)]
    keys = {decide(e, ctx(post(3))).messages[0].key for e in votes}
    assert keys == {f"priority-high:{FEEDBACK}:notify"}


def test_load_reads_its_project_s_rate_window_post_and_sentiment_in_one_call(pipeline: Pipeline, seed: Seed) -> None:
    """notify_context: the project's last slack_rate_per_minute sends (as
    datetimes, whichever store read them), and the post and its sentiment
    only when the post belongs to the event's project."""
    mine_project, other_project = seed.project(slack_rate_per_minute=2), seed.project()
    mine, theirs = seed.post(mine_project, "Export is broken"), seed.post(other_project, "Secret roadmap")
    seed.conn.execute("insert into sentiment_analysis (feedback_id, project_id, label, score, confidence, model)"
                      " values (%s, %s, 'negative', -0.5, 0.9, 'm')", (mine, mine_project))
    for n, (project, status, ago) in enumerate([(mine_project, "sent", 30), (mine_project, "sent", 10),
                                                (mine_project, "sent", 20), (mine_project, "recorded", 1),
                                                (other_project, "sent", 2)]):
        seed.conn.execute("insert into notifications (dedupe_key, project_id, text, status, sent_at)"
                          " values (%s, %s, 'x', %s, now() - make_interval(secs => %s))",
                          (f"k{n}", project, status, ago))
    agent = NotifyAgent()
    found = agent.load(make_event(EventType.FEEDBACK_CREATED, {"title": "Export is broken"}, aggregate_id=mine,
                                  project_id=mine_project), pipeline.deps)
    assert found.post is not None and found.post["title"] == "Export is broken"
    assert found.sentiment == {"label": "negative", "score": -0.5}
    assert found.settings["slack_rate_per_minute"] == 2
    assert all(isinstance(t, datetime) for t in found.recent_sent) and len(found.recent_sent) == 2
    ages = [(datetime.now().astimezone() - t).total_seconds() for t in found.recent_sent]
    assert 9 <= ages[0] < ages[1] < 25, "the two newest sends of this project, newest first"
    elsewhere = agent.load(make_event(EventType.FEEDBACK_CREATED, {"title": "Secret roadmap"}, aggregate_id=theirs,
                                      project_id=mine_project), pipeline.deps)
    assert elsewhere.post is None and elsewhere.sentiment is None
