"""Smart notifications: importance for every kind of event, suppression with a
reason, dedupe on what a message says, routing per project, the digest on
clock.tick, and Slack buttons that carry the notification id back through
functions/slack_actions; on the real database with a fake Slack."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import flask
import pytest
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from functions.notify.agent import Context, decide, notification_id
from functions.notify.scoring import assess
from functions.slack_actions.actions import SlackActions
from shared.events import DomainEvent, EventType
from shared.notifiers.slack import feedback_blocks
from shared.ports import Message
from shared.postgres_store import PostgresStore
from shared.settings import Settings
from tests.fakes.slack_server import FakeSlackServer
from tests.functions.conftest import PROJECT, T0, Pipeline, make_event, rows, writes_to
from tests.helpers import Seed

SPEC, COMPETITOR_ID, USER = UUID(int=0x5BEC), UUID(int=0xC0), UUID(int=0xAB)


def ctx(existing: dict[str, Any] | None = None, queued: list[dict[str, Any]] | None = None,
        **settings: Any) -> Context:
    return Context(None, None, settings, [], T0, existing=existing, queued=queued or [])


def ev(event_type: str, aggregate_type: str, aggregate_id: UUID = SPEC, **payload: Any) -> DomainEvent:
    return make_event(event_type, payload, aggregate_type=aggregate_type, aggregate_id=aggregate_id)


@pytest.mark.parametrize(
    ("event", "settings", "level", "says"),
    [
        pytest.param(ev(EventType.COMPETITOR_MENTIONED, "competitor", COMPETITOR_ID, competitor="Notion",
                        quote="we're switching to Notion", switching_intent=True), {}, "high", "Notion",
                     id="competitor with switching intent"),
        pytest.param(ev(EventType.COMPETITOR_MENTIONED, "competitor", COMPETITOR_ID, competitor="Notion",
                        quote="Notion does this too"), {}, "normal", "Notion", id="a plain competitor mention"),
        pytest.param(ev(EventType.COMPETITIVE_THREAT_IDENTIFIED, "competitor", COMPETITOR_ID, competitor="Notion",
                        mentions=5), {}, "urgent", "threat", id="competitive threat"),
        pytest.param(ev(EventType.USER_AT_RISK, "user", USER, user_id=str(USER)), {}, "normal", "went quiet",
                     id="engaged user at risk"),
        pytest.param(ev(EventType.USER_ENGAGED, "user", USER, user_id=str(USER)), {}, "low", "engaged",
                     id="user engaged"),
        pytest.param(ev(EventType.ROADMAP_STALLED, "spec", title="Dark mode", overdue=True), {}, "high",
                     "past its target date", id="stalled roadmap"),
        pytest.param(ev(EventType.SPEC_QUALITY_CHECKED, "spec", title="Dark mode", score=42, version=1,
                        fixes=["Add metrics"]), {}, "high", "42/100", id="low spec quality"),
        pytest.param(ev(EventType.SPEC_QUALITY_CHECKED, "spec", title="Dark mode", score=42, version=1),
                     {"spec_quality_min": 40}, "low", "42/100", id="spec quality above the project's minimum"),
        pytest.param(ev(EventType.DUPLICATE_FOUND, "feedback", title="A", candidates=[
            {"title": "B", "similarity": 0.9}] * 3), {}, "normal", "2 more", id="many duplicates: still normal"),
        pytest.param(ev(EventType.SPEC_UPDATED, "spec", title="Dark mode", version=2), {}, "low", "updated",
                     id="spec edited"),
    ],
)
def test_importance_of_the_new_agents_events(event: DomainEvent, settings: dict[str, Any], level: str,
                                             says: str) -> None:
    found = assess(event, None, None, settings)
    assert found.level == level and says in found.text and found.suppress is None


def test_messages_dedupe_on_what_they_say() -> None:
    threat = [ev(EventType.COMPETITIVE_THREAT_IDENTIFIED, "competitor", COMPETITOR_ID, competitor="Notion",
                 window_start="2026-01-01") for _ in range(2)]
    assert len({assess(e, None, None, {}).key for e in threat}) == 1
    stalls = [ev(EventType.ROADMAP_STALLED, "spec", since=s) for s in ("2026-01-01", "2026-01-01", "2026-02-01")]
    assert len({assess(e, None, None, {}).key for e in stalls}) == 2  # stalls again after progress: new message
    checks = [ev(EventType.SPEC_QUALITY_CHECKED, "spec", score=10, version=v) for v in (1, 1, 2)]
    assert len({assess(e, None, None, {}).key for e in checks}) == 2  # per spec version
    # issue 9: re-publishing a theme's threshold or a spec's draft is the same message (one per theme and
    # threshold, one per spec), whichever event carries it
    thresholds = [ev(EventType.THEME_THRESHOLD_REACHED, "theme", COMPETITOR_ID, name="Dark mode", threshold=t)
                  for t in (20, 20, 40)]
    assert len({assess(e, None, None, {}).key for e in thresholds}) == 2
    drafts = [ev(EventType.SPEC_AUTO_DRAFTED, "spec", aggregate_id=spec, theme="Dark mode", title="Dark mode")
              for spec in (SPEC, SPEC, COMPETITOR_ID)]
    assert len({assess(e, None, None, {}).key for e in drafts}) == 2


def suppressed(decision: Any) -> dict[str, Any]:
    (row,) = writes_to(decision, "notifications")
    assert not decision.messages and row["status"] == "suppressed"
    return row


def test_noise_and_own_events_are_suppressed_with_a_reason() -> None:
    voted = make_event(EventType.FEEDBACK_VOTED, {"vote_count": 2})
    post_ctx = Context({"id": uuid4(), "title": "x", "vote_count": 2}, None, {}, [], T0)
    assert suppressed(decide(voted, post_ctx))["reason"] == "noise"
    sent = ev(EventType.NOTIFICATION_SENT, "notification")
    assert suppressed(decide(sent, ctx()))["reason"] == "own_event"
    low = ev(EventType.USER_ENGAGED, "user", USER, user_id=str(USER))
    assert suppressed(decide(low, ctx(notify_digest_min_importance="normal")))["reason"] == "below_digest_minimum"


def test_a_repeat_is_suppressed_but_a_retry_of_the_same_event_goes_on() -> None:
    drafted = ev(EventType.SPEC_AUTO_DRAFTED, "spec", theme="Dark mode", title="Build: dark mode")
    other_event = {"status": "sent", "event_id": uuid4()}
    row = suppressed(decide(drafted, ctx(existing=other_event)))
    assert row["reason"] == "duplicate" and row["dedupe_key"] == f"{drafted.id}:notify:suppressed"
    (message,) = decide(drafted, ctx(existing={"status": "sending", "event_id": drafted.id})).messages
    assert message.key == assess(drafted, None, None, {}).key
    assert len(decide(drafted, ctx(existing={"status": "failed", "event_id": uuid4()})).messages) == 1


def test_routing_per_importance_and_the_notification_id_on_each_message() -> None:
    routes = {"urgent": "#alerts", "high": "#product", "digest": "#digest"}
    threat = ev(EventType.COMPETITIVE_THREAT_IDENTIFIED, "competitor", COMPETITOR_ID, competitor="Notion")
    drafted = ev(EventType.SPEC_AUTO_DRAFTED, "spec", theme="Dark mode", title="Build: dark mode")
    (urgent,) = decide(threat, ctx(notify_channels=routes)).messages
    (high,) = decide(drafted, ctx(notify_channels=routes)).messages
    (fallback,) = decide(threat, ctx(notify_channels={"high": "#product"})).messages
    (default,) = decide(drafted, ctx()).messages
    assert (urgent.channel, high.channel, fallback.channel, default.channel) == ("#alerts", "#product",
                                                                                 "#product", None)
    assert high.id == notification_id(high.key) and urgent.id != high.id


def queued_item(key: str, importance: str = "low", status: str = "queued", minutes: int = 5,
                event_type: str = "feedback.created") -> dict[str, Any]:
    return {"dedupe_key": key, "importance": importance, "text": f"about {key}", "status": status,
            "event_type": event_type, "created_at": T0 - timedelta(minutes=minutes)}


def tick(at: str = "2026-01-15T12:00:00Z") -> DomainEvent:
    return make_event(EventType.CLOCK_TICK, {"at": at}, aggregate_type="clock", aggregate_id=PROJECT)


def test_the_digest_on_a_tick_sends_everything_queued_once() -> None:
    queued = [queued_item("a"), queued_item("b", "normal", minutes=1), queued_item("c", "high", "rate_limited"),
              queued_item("d", event_type="priority.calculated"), queued_item("e", event_type="priority.calculated")]
    decision = decide(tick(), ctx(queued=queued, notify_channels={"digest": "#digest"}))
    (message,) = decision.messages
    assert message.key == f"digest:{PROJECT}:2026-01-15T12:00:00Z:notify" and message.channel == "#digest"
    lines = message.text.splitlines()
    assert "5 updates (1 held back by the rate limit)" in lines[0]
    assert lines[1:] == ["• about c _(high)_", "• about b _(normal)_",
                         "Also 3 smaller updates: 2 priority.calculated, 1 feedback.created"]
    marked = writes_to(decision, "notifications")
    assert [(m["dedupe_key"], m["status"]) for m in marked] == [("a", "digested"), ("b", "digested"),
                                                               ("c", "rate_limited"), ("d", "digested"),
                                                               ("e", "digested")]
    assert {m["digest_key"] for m in marked} == {message.key}
    assert decide(tick(), ctx(queued=queued)).messages[0].key == message.key  # a replayed tick: same digest


@pytest.mark.parametrize(
    ("at", "settings", "queued", "sent", "cadence"),
    [
        ("2026-01-15T12:00:00Z", {}, [], False, 3600),
        ("2026-01-15T13:00:00Z", {"notify_digest_hours": 4}, ["a"], False, None),
        ("2026-01-15T16:00:00Z", {"notify_digest_hours": 4}, ["a"], True, None),
        ("2026-01-15T13:00:00Z", {"notify_digest_hours": 4}, ["a"], False, 3600),
        ("2026-01-15T16:00:00Z", {"notify_digest_hours": 4}, ["a"], True, 3600),
        ("2026-01-15T16:20:00Z", {}, ["a"], True, None),
        ("2026-01-15T16:20:00Z", {}, ["a"], True, 3600),  # the default hourly clock: every tick
        pytest.param("2026-01-15T16:00:00Z", {}, ["a"], True, 600, id="a 10-minute clock: the hour's first tick"),
        pytest.param("2026-01-15T16:10:00Z", {}, ["a"], False, 600, id="a 10-minute clock: the next one waits"),
        pytest.param("2026-01-15T16:59:59Z", {}, ["a"], False, 600, id="a 10-minute clock: the hour's last second"),
        pytest.param("2026-01-15T17:09:59Z", {}, ["a"], True, 600, id="a 10-minute clock, ticking late"),
        ("not a time", {}, ["a"], False, None),
    ],
)
def test_when_a_digest_is_due(at: str, settings: dict[str, Any], queued: list[str], sent: bool,
                              cadence: int | None) -> None:
    event = tick(at)
    if cadence is not None:
        event = event.model_copy(update={"payload": {**event.payload, "interval_seconds": cadence}})
    decision = decide(event, ctx(queued=[queued_item(k) for k in queued], **settings))
    assert bool(decision.messages) is sent


def test_slack_messages_carry_useful_and_not_useful_buttons() -> None:
    nid = uuid4()
    blocks = feedback_blocks(Message(key="k", id=nid, project_id=PROJECT, text="x" * 4000))
    assert blocks is not None
    section, actions = blocks
    assert len(section["text"]["text"]) == digest_limit()
    assert [(e["text"]["text"], e["value"]) for e in actions["elements"]] == [("Useful", str(nid)),
                                                                              ("Not useful", str(nid))]
    assert feedback_blocks(Message(key="k", project_id=PROJECT, text="x")) is None


def digest_limit() -> int:
    from shared.notifiers.slack import MAX_SECTION

    return MAX_SECTION


# -- the real database, a fake Slack and the button coming back --------------------------------


def click(store: PostgresStore, value: str, user: str) -> Any:
    actions = SlackActions(Settings(slack_signing_secret=SecretStr("s3cret")), store)
    app = flask.Flask("actions")
    app.add_url_rule("/", "h", lambda: actions(flask.request), methods=["POST"])
    body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": user}, "actions": [
        {"action_id": "notification_useful", "value": value}]})}).encode()
    ts = str(int(time.time()))
    return app.test_client().post("/", data=body, content_type="application/x-www-form-urlencoded", headers={
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier("s3cret").generate_signature(timestamp=ts, body=body)})


def test_low_events_wait_for_the_digest_which_goes_out_once_with_buttons(
        slack_pipeline: Pipeline, slack: FakeSlackServer, seed: Seed, store: PostgresStore) -> None:
    project = seed.project(notify_channels={"digest": "#digest"})
    seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                      "values (%s, 'xoxb-test', '#product')", (project,))
    for title in ("Love the editor", "Nice export"):
        seed.post(project, title, "Great work")
    assert all(r["status"] == "succeeded" for r in slack_pipeline.run("notify", EventType.FEEDBACK_CREATED))
    assert slack.posted == []
    queued = rows(seed, "select status, model from notifications")
    assert [(n["status"], n["model"]) for n in queued] == [("queued", "notify-rules-1")] * 2

    seed.conn.execute("select publish_clock_tick(now() + interval '1 second')")
    (tick_row,) = seed.events(EventType.CLOCK_TICK)
    reply = slack_pipeline.deliver("notify", tick_row)

    assert reply["status"] == "succeeded" and reply["summary"]["items"] == 2, reply
    (posted,) = slack.posted
    assert posted["channel"] == "#digest" and "2 smaller updates: 2 feedback.created" in posted["text"]
    buttons = json.loads(posted["blocks"]) if isinstance(posted["blocks"], str) else posted["blocks"]
    value = buttons[1]["elements"][0]["value"]
    (digest_row,) = rows(seed, "select * from notifications where dedupe_key like 'digest:%%'")
    assert value == str(digest_row["id"]) and digest_row["status"] == "sent"
    assert digest_row["model"] == "notify-digest-1"  # each result records what produced it
    items = rows(seed, "select * from notifications where dedupe_key not like 'digest:%%'")
    assert {(i["status"], i["digest_key"]) for i in items} == {("digested", digest_row["dedupe_key"])}

    assert store.rpc("replay_event", {"p_event_id": tick_row["id"], "p_agent": "notify"}) == 1
    assert slack_pipeline.deliver("notify", tick_row)["status"] == "succeeded"
    assert len(slack.posted) == 1  # the replayed tick finds nothing new to digest
    assert click(store, value, "U1").json["results"] == ["recorded"]
    assert rows(seed, "select verdict from notification_feedback") == [{"verdict": "useful"}]


def test_republishing_a_threshold_does_not_resend(slack_pipeline: Pipeline, slack: FakeSlackServer,
                                                  seed: Seed, store: PostgresStore) -> None:
    from shared.events import EventMetadata

    project = seed.project()
    seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                      "values (%s, 'xoxb-test', '#product')", (project,))
    theme = uuid4()
    events = [DomainEvent(id=uuid4(), type=EventType.THEME_THRESHOLD_REACHED, aggregate_type="theme",
                          aggregate_id=theme, payload={"name": "Dark mode", "feedback_count": 20, "threshold": 20},
                          metadata=EventMetadata(project_id=project, producer="theme")) for _ in range(2)]
    store.publish(events)
    replies = [slack_pipeline.deliver("notify", r) for r in seed.events(EventType.THEME_THRESHOLD_REACHED)]
    assert [r["status"] for r in replies] == ["succeeded", "succeeded"]
    assert len(slack.posted) == 1 and len(seed.events(EventType.NOTIFICATION_SENT)) == 1
    reasons = [n["reason"] for n in rows(seed, "select reason from notifications where status = 'suppressed'")]
    assert reasons == ["duplicate"]
    models = rows(seed, "select status, model from notifications order by status")
    assert [(n["status"], n["model"]) for n in models] == [("sent", "notify-rules-1"),
                                                          ("suppressed", "notify-rules-1")]


def test_each_project_gets_its_own_digest_in_its_own_channel(slack_pipeline: Pipeline, slack: FakeSlackServer,
                                                             seed: Seed) -> None:
    """One tick for every project: each digest carries only its project's items, routed by its settings."""
    routed, plain = seed.project(notify_channels={"digest": "#digest"}), seed.project()
    for project, channel in ((routed, "#product"), (plain, "#general")):
        seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                          "values (%s, 'xoxb-test', %s)", (project, channel))
    seed.post(routed, "Love the editor", "Great work")
    for title in ("Nice export", "Good search"):
        seed.post(plain, title, "Great work")
    assert all(r["status"] == "succeeded" for r in slack_pipeline.run("notify", EventType.FEEDBACK_CREATED))
    assert seed.conn.execute("select publish_clock_tick(now() + interval '1 second') as n").fetchone()["n"] == 2
    replies = slack_pipeline.run("notify", EventType.CLOCK_TICK)

    assert sorted(r["summary"]["items"] for r in replies) == [1, 2], replies
    by_channel = {m["channel"]: m["text"] for m in slack.posted}
    assert set(by_channel) == {"#digest", "#general"}
    assert "1 update" in by_channel["#digest"] and "2 updates" in by_channel["#general"]
    digests = rows(seed, "select project_id, dedupe_key from notifications where dedupe_key like 'digest:%%'")
    assert {(d["project_id"], d["dedupe_key"].split(":")[1]) for d in digests} == {
        (routed, str(routed)), (plain, str(plain))}
