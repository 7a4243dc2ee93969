"""Competitive agent: pure decide (mentions, features and switching intent as
rows and events; a threat once per competitor per window) and, on the real
database, the catalogue members edit, mentions and a threat identified once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from functions.competitive.agent import Context, decide
from shared.analyzers.offline import OfflineAnalyzer
from shared.analyzers.openai_analyzer import OpenAIAnalyzer
from shared.clock import window_start
from shared.events import DomainEvent, EventType
from shared.feedback import feedback_text
from shared.mentions import find_mentions
from tests.fakes.openai_server import FakeOpenAIServer
from tests.functions.conftest import FEEDBACK, PROJECT, T0, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

ASANA = UUID("00000000-0000-4000-8000-0000000000a1")
NOTION = UUID("00000000-0000-4000-8000-0000000000a2")
CATALOGUE = [{"id": ASANA, "project_id": PROJECT, "name": "Asana", "aliases": [], "domains": ["asana.com"]},
             {"id": NOTION, "project_id": PROJECT, "name": "Notion", "aliases": ["Notion HQ"],
              "domains": ["notion.so"]}]


def created(title: str, body: str = "") -> tuple[DomainEvent, dict[str, Any]]:
    post = {"id": FEEDBACK, "project_id": PROJECT, "title": title, "body": body}
    return make_event(EventType.FEEDBACK_CREATED, {"feedback_id": str(FEEDBACK), "title": title, "body": body}), post


def context_for(post: dict[str, Any], analyzer: OfflineAnalyzer, sentiment: str | None = None) -> Context:
    """What load would read: the catalogue and the offline analyzer's signals."""
    text = feedback_text(post)
    return Context(post, CATALOGUE, analyzer.competitor_signals(text, find_mentions(text, CATALOGUE)), sentiment)


@pytest.mark.parametrize(
    ("title", "body", "mentioned", "switching", "features"),
    [
        pytest.param("Great promotion", "Our promotion emails are great.", [], [], [], id="notion inside promotion"),
        pytest.param("Asana has a timeline view", "We are considering switching to Asana because of it.",
                     ["Asana"], ["Asana"], [("Asana", "timeline view")], id="feature and switching"),
        pytest.param("Notion HQ", "Their docs at notion.so are nicer.", ["Notion"], [], [], id="an alias"),
        pytest.param("Import from https://app.asana.com/0/123", "", ["Asana"], [], [], id="a domain"),
        pytest.param("Wir wechseln zu Notion", "Notion hat einen Offline-Modus.", ["Notion"], ["Notion"],
                     [("Notion", "Offline-Modus")], id="German"),
        pytest.param("Asana vs Notion", "Notion offers offline mode; Asana is fine.", ["Asana", "Notion"], [],
                     [("Notion", "offline mode")], id="two competitors"),
    ],
)
def test_mentions_features_and_switching_become_rows_and_events(
        title: str, body: str, mentioned: list[str], switching: list[str], features: list[tuple[str, str]],
        analyzer: OfflineAnalyzer) -> None:
    event, post = created(title, body)
    decision = decide(event, context_for(post, analyzer, "negative"))

    found = writes_to(decision, "competitor_mentions")
    names = {str(c["id"]): c["name"] for c in CATALOGUE}
    assert sorted(names[str(r["competitor_id"])] for r in found) == sorted(mentioned)
    assert sorted(names[str(r["competitor_id"])] for r in found if r["switching_intent"]) == sorted(switching)
    kinds = [e.type for e in decision.events]
    assert kinds.count(EventType.COMPETITOR_MENTIONED) == len(mentioned)
    detected = [(e.payload["competitor"], e.payload["feature"]) for e in decision.events
                if e.type == EventType.COMPETITOR_FEATURE_DETECTED]
    assert detected == features
    for out in decision.events:
        assert_follows(out, event, "competitive")
        assert out.aggregate_type == "competitor"
    for mention in (e for e in decision.events if e.type == EventType.COMPETITOR_MENTIONED):
        assert mention.payload["feedback_sentiment"] == "negative" and mention.payload["quote"]
        assert mention.payload["sentiment"] in ("negative", "neutral", "positive")
        assert mention.payload["model"] == "offline-competitive-rules-1"
    assert decide(event, context_for(post, analyzer, "negative")) == decision  # a retry decides the same


def test_feedback_deleted_before_delivery_is_skipped() -> None:
    event, _ = created("Asana")
    decision = decide(event, Context(None, CATALOGUE))
    assert not decision.writes and not decision.events and "no longer exists" in decision.summary["skipped"]


def mention_row(feedback: int, days: float, *, switching: bool = False, sentiment: str = "neutral") -> dict[str, Any]:
    return {"feedback_id": UUID(int=feedback), "competitor_id": ASANA, "quote": f"quote {feedback}",
            "switching_intent": switching, "sentiment": sentiment, "mentioned_at": T0 + timedelta(days=days)}


def mentioned(days: float = 0.0) -> DomainEvent:
    at = T0 + timedelta(days=days)
    return make_event(EventType.COMPETITOR_MENTIONED,
                      {"competitor_id": str(ASANA), "mentioned_at": at.isoformat(), "model": "m"},
                      aggregate_type="competitor", aggregate_id=ASANA, created_at=at)


START = window_start(T0, 7)
DAY = (T0 - START).total_seconds() / 86400  # T0 is this many days into its week


@pytest.mark.parametrize(
    ("mentions", "threshold", "identified", "threat"),
    [
        pytest.param([mention_row(1, 0, switching=True), mention_row(2, 0, sentiment="negative")], 3, False, False,
                     id="two qualifying of three"),
        pytest.param([mention_row(1, 0, switching=True), mention_row(2, 0, sentiment="negative"),
                      mention_row(3, 0, switching=True)], 3, False, True, id="the third crosses"),
        pytest.param([mention_row(1, 0, switching=True), mention_row(2, 0, sentiment="negative"),
                      mention_row(3, 0, sentiment="positive"), mention_row(4, 0)], 3, False, False,
                     id="positive and neutral ones do not count"),
        pytest.param([mention_row(1, -DAY - 0.01, switching=True), mention_row(2, 0, switching=True),
                      mention_row(3, 0, switching=True)], 3, False, False, id="one from the previous window"),
        pytest.param([mention_row(1, -DAY, switching=True), mention_row(2, 0, switching=True),
                      mention_row(3, 0, switching=True)], 3, False, True, id="the window's first instant counts"),
        pytest.param([mention_row(i, 0, switching=True) for i in range(1, 6)], 3, True, False,
                     id="already identified in this window"),
        pytest.param([mention_row(1, 0, switching=True)], 1, False, True, id="a threshold of one"),
    ],
)
def test_a_threat_is_identified_once_per_competitor_per_window(mentions: list[dict[str, Any]], threshold: int,
                                                               identified: bool, threat: bool) -> None:
    event = mentioned()
    competitor = CATALOGUE[0]
    decision = decide(event, Context(competitor=competitor, mentions=mentions, threshold=threshold, window_days=7,
                                     already_identified=identified))
    assert bool(decision.events) is threat
    if threat:
        (out,) = decision.events
        assert out.type == EventType.COMPETITIVE_THREAT_IDENTIFIED and out.payload["window_start"] == START.isoformat()
        (row,) = writes_to(decision, "competitive_threats")
        assert row["window_start"] == START and row["mentions"] == out.payload["mentions"] >= threshold
        assert decision.writes[0].update is False
        later = decide(mentioned(days=1), Context(competitor=competitor, mentions=mentions, threshold=threshold,
                                                  window_days=7))
        assert later.events[0].id == out.id, "another mention in the same window has the same threat id"
        next_week = decide(mentioned(days=7), Context(competitor=competitor, mentions=[
            {**m, "mentioned_at": m["mentioned_at"] + timedelta(days=7)} for m in mentions], threshold=threshold,
            window_days=7))
        assert next_week.events[0].id != out.id, "the next window has its own"


def test_a_competitor_removed_from_the_catalogue_is_skipped() -> None:
    decision = decide(mentioned(), Context(competitor=None, mentions=[mention_row(1, 0, switching=True)], threshold=1))
    assert not decision.events and "catalogue" in decision.summary["skipped"]


# -- on the real database -------------------------------------------------------


def add_competitor(seed: Seed, project: UUID, name: str, aliases: list[str] = (), domains: list[str] = ()) -> UUID:
    row = seed.conn.execute("insert into competitors (project_id, name, aliases, domains) values (%s, %s, %s, %s) "
                            "returning id", (project, name, list(aliases), list(domains))).fetchone()
    assert row is not None
    return row["id"]


def test_mentions_and_one_threat_on_the_real_database(pipeline: Pipeline, seed: Seed) -> None:
    project = seed.project(competitor_threat_threshold=2)
    other = seed.project()
    asana = add_competitor(seed, project, "Asana", domains=["asana.com"])
    add_competitor(seed, other, "Asana")  # another project's catalogue plays no part
    seed.post(project, "Asana has a timeline view", "We are switching to Asana because of it.")
    seed.post(project, "Moving to Asana", "We are considering Asana, this is frustrating and broken.")
    seed.post(project, "Our promotion page", "No competitor here.")
    seed.post(other, "Nothing about them", "Plain feedback.")

    replies = pipeline.run("competitive", EventType.FEEDBACK_CREATED)
    assert [r["status"] for r in replies] == ["succeeded"] * 4, replies
    found = rows(seed, "select * from competitor_mentions order by mentioned_at")
    assert [(r["competitor_id"], r["switching_intent"]) for r in found] == [(asana, True), (asana, True)]
    assert found[0]["features"] == ["timeline view"] and found[0]["model"] == "offline-competitive-rules-1"
    [feature] = seed.events(EventType.COMPETITOR_FEATURE_DETECTED)
    assert feature["payload"]["feature"] == "timeline view"

    replies = pipeline.run("competitive", EventType.COMPETITOR_MENTIONED)
    assert [r["status"] for r in replies] == ["succeeded"] * 2
    [threat] = seed.events(EventType.COMPETITIVE_THREAT_IDENTIFIED)
    assert threat["payload"]["mentions"] == 2 and threat["payload"]["competitor"] == "Asana"
    assert rows(seed, "select count(*) as n from competitive_threats")[0]["n"] == 1
    # a replay of the mention events identifies nothing new
    seed.conn.execute("select replay_deliveries(p_agent => 'competitive')")
    assert all(r["status"] == "succeeded" for r in pipeline.run("competitive", EventType.COMPETITOR_MENTIONED))
    assert len(seed.events(EventType.COMPETITIVE_THREAT_IDENTIFIED)) == 1


def as_member(conn: psycopg.Connection, user: UUID) -> None:
    conn.execute("set local role authenticated")
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps({"sub": str(user)}),))


def test_members_edit_their_catalogue_and_read_results_of_their_project_only(seed: Seed) -> None:
    alice, bob = seed.user(), seed.user()
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    add_competitor(seed, theirs, "Trello")
    with seed.conn.transaction():
        as_member(seed.conn, alice)
        seed.conn.execute("insert into competitors (project_id, name, aliases) values (%s, 'Asana', %s)",
                          (mine, ["asana app"]))
        seed.conn.execute("update competitors set domains = %s where name = 'Asana'", (["asana.com"],))
        visible = seed.conn.execute("select name, domains from competitors").fetchall()
        assert [(r["name"], r["domains"]) for r in visible] == [("Asana", ["asana.com"])]
        assert seed.conn.execute("update competitors set name = 'x' where name = 'Trello'").rowcount == 0
    for statement, params in [("insert into competitors (project_id, name) values (%s, 'Sneaky')", (theirs,)),
                              ("insert into competitor_mentions (feedback_id, competitor_id, project_id, matched, "
                               "quote, model, mentioned_at) select gen_random_uuid(), id, project_id, 'a', 'a', 'm', "
                               "now() from competitors", None),
                              ("update competitors set project_id = %s", (theirs,))]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), seed.conn.transaction():
            as_member(seed.conn, alice)
            seed.conn.execute(statement, params)
    with seed.conn.transaction():
        as_member(seed.conn, alice)
        seed.conn.execute("delete from competitors where name = 'Asana'")
    assert [r["name"] for r in rows(seed, "select name from competitors")] == ["Trello"]


# -- with OpenAI (the fake server), over the agent's HTTP endpoint ------------------


def test_openai_signals_and_a_malformed_answer_dead_lettered(store: Any, seed: Seed, no_proxy: None) -> None:
    project = seed.project()
    asana = add_competitor(seed, project, "Asana")
    good = seed.post(project, "Asana is where we are heading", "Their timeline is better.")
    bad = seed.post(project, "Asana again", "Still thinking about it.")
    with FakeOpenAIServer() as server:
        ai = OpenAIAnalyzer(api_key="k", base_url=server.base_url, model="gpt-test", timeout_s=2, max_retries=0)
        pipeline = Pipeline(store, seed, ai)  # type: ignore[arg-type]
        server.answer_chat(json.dumps({"competitors": [{"competitor": "Asana", "sentiment": "negative",
                                                        "switching_intent": True, "features": ["timeline"]}]}))
        server.answer_chat("{}")
        server.answer_chat(json.dumps({"competitors": []}))
        first, second = seed.events(EventType.FEEDBACK_CREATED)
        assert pipeline.deliver("competitive", first)["status"] == "succeeded"
        failed = pipeline.deliver("competitive", second)
    assert failed["status"] == "dead" and "malformed CompetitorAnswer" in failed["message"]
    [row] = rows(seed, "select * from competitor_mentions")
    assert (row["feedback_id"], row["competitor_id"], row["model"]) == (good, asana, "gpt-test")
    assert row["switching_intent"] is True and row["sentiment"] == "negative" and row["features"] == ["timeline"]
    assert not rows(seed, "select * from competitor_mentions where feedback_id = %s", bad), "nothing half-written"
    [feature] = seed.events(EventType.COMPETITOR_FEATURE_DETECTED)
    assert feature["payload"]["feature"] == "timeline" and feature["payload"]["model"] == "gpt-test"
