"""Engagement agent: pure decide (a crossing into engaged at the window's
exact boundary, once per crossing; at risk past the silence, once per
silence; a return) and, on the real database, counts, crossings and ticks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from functions.engagement.agent import MODEL, Context, contributor, decide
from shared.errors import PermanentError
from shared.events import DomainEvent, EventType
from tests.functions.conftest import PROJECT, T0, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

USER = UUID("00000000-0000-4000-8000-0000000000e1")
DAY = timedelta(days=1)


def contribution(kind: str = EventType.FEEDBACK_COMMENTED, at: datetime = T0, **payload: Any) -> DomainEvent:
    key = "user_id" if kind == EventType.FEEDBACK_VOTED else "author_id"
    return make_event(kind, {key: str(USER), **payload}, created_at=at)


def earlier(*days_ago: float, kind: str = "comment") -> list[dict[str, Any]]:
    return [{"event_id": str(uuid4()), "kind": kind, "at": (T0 - timedelta(days=d)).isoformat()} for d in days_ago]


def row(status: str = "active", crossings: int = 0, last: datetime = T0, **kw: Any) -> dict[str, Any]:
    return {"project_id": PROJECT, "user_id": USER, "posts": 1, "comments": 1, "votes": 1, "recent": 1, "score": 3.0,
            "last_active_at": last, "status": status, "engaged_at": None, "at_risk_at": None,
            "crossings": crossings, "model": MODEL, "source_event_id": uuid4(), **kw}


@pytest.mark.parametrize(
    ("recent", "status", "engaged"),
    [
        pytest.param(earlier(1, 2), "active", True, id="the third within 14 days"),
        pytest.param(earlier(14, 3), "active", True, id="one exactly 14 days ago counts"),
        pytest.param(earlier(14.000001, 3), "active", False, id="one just past 14 days does not"),
        pytest.param(earlier(1), "active", False, id="the second"),
        pytest.param(earlier(1, 2, 3), "engaged", False, id="already engaged: no new crossing"),
        pytest.param(earlier(1, 2), "at_risk", True, id="back from a silence: a new crossing"),
    ],
)
def test_a_user_crosses_into_engaged_once_per_crossing(recent: list[dict[str, Any]], status: str,
                                                       engaged: bool) -> None:
    event = contribution()
    decision = decide(event, Context(USER, {"comment": len(recent)}, recent, row(status, crossings=1)))
    (stored,) = writes_to(decision, "user_engagement")
    assert bool(decision.events) is engaged
    assert stored["status"] == ("engaged" if engaged or status == "engaged" else "active")
    assert stored["comments"] == len(recent) + 1 and stored["model"] == MODEL
    if engaged:
        (out,) = decision.events
        assert out.type == EventType.USER_ENGAGED and out.aggregate_id == USER and out.payload["crossing"] == 2
        assert stored["crossings"] == 2 and stored["engaged_at"] == T0
        assert_follows(out, event, "engagement")
        again = decide(contribution(), Context(USER, {}, recent, row(status, crossings=1)))
        assert again.events[0].id == out.id, "the same crossing has one id, whatever event reports it"


def test_score_counts_posts_comments_and_votes_in_the_window() -> None:
    recent = [*earlier(1, kind="post"), *earlier(2, kind="vote"), *earlier(20, kind="post")]
    decision = decide(contribution(EventType.FEEDBACK_VOTED, delta=1), Context(USER, {"post": 2, "vote": 1}, recent))
    (stored,) = writes_to(decision, "user_engagement")
    assert (stored["posts"], stored["votes"], stored["comments"]) == (2, 2, 0)
    assert stored["recent"] == 3 and stored["score"] == 3 + 1 + 1


def test_a_replayed_contribution_is_not_counted_twice() -> None:
    event = contribution()
    recorded = [{"event_id": str(event.id), "kind": "comment", "at": T0.isoformat()}, *earlier(1)]
    decision = decide(event, Context(USER, {"comment": 2}, recorded))
    (stored,) = writes_to(decision, "user_engagement")
    assert stored["comments"] == 2 and stored["recent"] == 2 and not decision.events


@pytest.mark.parametrize(
    ("event", "who"),
    [
        pytest.param(contribution(EventType.FEEDBACK_VOTED, delta=-1), None, id="an unvote"),
        pytest.param(make_event(EventType.FEEDBACK_CREATED, {"author_id": None}), None, id="anonymous"),
        pytest.param(make_event(EventType.FEEDBACK_CREATED, {"author_id": "not-a-uuid"}), None, id="garbage"),
        pytest.param(contribution(EventType.FEEDBACK_CREATED), USER, id="an author"),
    ],
)
def test_who_contributed(event: DomainEvent, who: UUID | None) -> None:
    assert contributor(event) == who
    if who is None:
        assert decide(event, Context()).summary == {"skipped": "no contributor"}


def tick(at: datetime) -> DomainEvent:
    return make_event(EventType.CLOCK_TICK, {"at": at.isoformat()}, aggregate_type="clock", aggregate_id=PROJECT,
                      created_at=T0)


@pytest.mark.parametrize(
    ("silent", "at_risk"),
    [
        pytest.param(timedelta(days=14), False, id="exactly 14 days is not past"),
        pytest.param(timedelta(days=14, seconds=1), True, id="a second past 14 days"),
        pytest.param(timedelta(days=3), False, id="recently active"),
    ],
)
def test_an_engaged_user_silent_past_the_days_is_at_risk_once_per_silence(silent: timedelta, at_risk: bool) -> None:
    event = tick(T0 + silent)
    decision = decide(event, Context(engaged=[row("engaged", 1)], at_risk_days=14))
    assert bool(decision.events) is at_risk
    if at_risk:
        (out,) = decision.events
        assert out.type == EventType.USER_AT_RISK and out.payload["last_active_at"] == T0.isoformat()
        assert writes_to(decision, "user_engagement")[0]["status"] == "at_risk"
        later = decide(tick(T0 + silent + DAY), Context(engaged=[row("engaged", 1)], at_risk_days=14))
        assert later.events[0].id == out.id, "one silence, one id"
        after_return = decide(tick(T0 + silent + DAY), Context(engaged=[row("engaged", 1, last=T0 - DAY)],
                                                                at_risk_days=14))
        assert after_return.events[0].id != out.id, "a later silence is another one"


def test_only_engaged_users_go_at_risk_and_the_tick_time_is_payload_at() -> None:
    users = [row("engaged", 1, last=T0 - 30 * DAY), row("active", last=T0 - 30 * DAY),
             row("at_risk", 1, last=T0 - 30 * DAY)]
    decision = decide(tick(T0), Context(engaged=users, at_risk_days=14))
    assert len(decision.events) == 1
    with pytest.raises(PermanentError, match=r"payload\.at"):
        decide(make_event(EventType.CLOCK_TICK, {"at": "soon"}), Context())


# -- on the real database -------------------------------------------------------


def comment(seed: Seed, post: UUID, author: UUID, text: str = "Me too") -> None:
    seed.conn.execute("insert into comments (post_id, author_id, body) values (%s, %s, %s)", (post, author, text))


def publish_tick(pipeline: Pipeline, project: UUID, at: datetime) -> dict[str, Any]:
    event = make_event(EventType.CLOCK_TICK, {"at": at.isoformat()}, aggregate_type="clock", aggregate_id=project,
                       project_id=project, created_at=None)
    pipeline.store.publish([event])
    [stored] = [e for e in pipeline.seed.events(EventType.CLOCK_TICK) if e["id"] == event.id]
    return stored


def test_contributions_crossings_and_ticks_on_the_real_database(pipeline: Pipeline, seed: Seed) -> None:
    owner, fan = seed.user(), seed.user()
    project = seed.project(owner=owner, engagement_at_risk_days=10)
    post = seed.post(project, "Dark mode please", author=fan)
    comment(seed, post, fan)
    seed.conn.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, owner))
    for kind in (EventType.FEEDBACK_CREATED, EventType.FEEDBACK_COMMENTED, EventType.FEEDBACK_VOTED):
        assert [r["status"] for r in pipeline.run("engagement", kind)] == ["succeeded"]
    assert not seed.events(EventType.USER_ENGAGED)
    seed.conn.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, fan))
    last_vote = seed.events(EventType.FEEDBACK_VOTED)[-1]
    assert pipeline.deliver("engagement", last_vote)["status"] == "succeeded"

    [engaged] = seed.events(EventType.USER_ENGAGED)
    assert engaged["aggregate_id"] == fan and engaged["payload"]["contributions"] == 3
    [fan_row] = rows(seed, "select * from user_engagement where user_id = %s", fan)
    assert (fan_row["posts"], fan_row["comments"], fan_row["votes"], fan_row["status"]) == (1, 1, 1, "engaged")
    assert rows(seed, "select status from user_engagement where user_id = %s", owner)[0]["status"] == "active"

    now = fan_row["last_active_at"]
    quiet = publish_tick(pipeline, project, now + timedelta(days=9))
    assert pipeline.deliver("engagement", quiet)["status"] == "succeeded"
    assert not seed.events(EventType.USER_AT_RISK)
    for days in (11, 12):  # two ticks of one silence
        assert pipeline.deliver("engagement", publish_tick(pipeline, project, now + timedelta(days=days)))[
            "status"] == "succeeded"
    [at_risk] = seed.events(EventType.USER_AT_RISK)
    assert at_risk["aggregate_id"] == fan and at_risk["payload"]["silent_days"] > 10
    assert rows(seed, "select status from user_engagement where user_id = %s", fan)[0]["status"] == "at_risk"
    assert len(rows(seed, "select * from user_activity")) == 4


def test_a_contribution_delivered_after_later_ones_still_sees_them() -> None:
    """The post's event arrives after the two comments made on it later."""
    later = [{"event_id": str(uuid4()), "kind": "comment", "at": (T0 + timedelta(minutes=m)).isoformat()}
             for m in (1, 2)]
    decision = decide(contribution(EventType.FEEDBACK_CREATED), Context(
        USER, {"comment": 2}, later, row("active", last=T0 + timedelta(minutes=2))))
    (stored,) = writes_to(decision, "user_engagement")
    assert stored["recent"] == 3 and stored["status"] == "engaged" and len(decision.events) == 1
    assert stored["last_active_at"] == T0 + timedelta(minutes=2), "last activity never goes back"
