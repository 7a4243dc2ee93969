"""The whole local stack, end to end: real PostgreSQL, the real relay, one
functions-framework server per agent (subprocesses), the offline analyzer and a
fake Slack. A post written through SQL flows through every agent once."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import pytest
from psycopg.types.json import Jsonb
from slack_sdk.signature import SignatureVerifier

from signalsloop.local.stack import Stack
from signalsloop.operations.notifications import report
from tests.fakes.slack_server import FakeSlackServer
from tests.signalsloop import stack_helpers as h

# the agents subscribed to feedback.created
SUBSCRIBED = {"sentiment", "duplicate", "notify", "competitive", "engagement"}
SIGNING_SECRET = "e2e-slack-signing-secret"


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(pg_server: str, slack: FakeSlackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # SLACK_SIGNING_SECRET: for slack_actions
    with h.running_stack(pg_server, slack, tmp_path_factory.mktemp("e2e-logs"),
                         SLACK_SIGNING_SECRET=SIGNING_SECRET) as running:
        yield running


@pytest.mark.timeout(120)
def test_a_post_flows_through_every_agent_once(stack: Stack, slack: FakeSlackServer) -> None:
    assert stack.database_url
    url = stack.database_url
    base = h.baseline(url, slack)

    [post_id] = h.post(url, base.project_id)
    h.settle(stack, timeout=60)

    [created] = h.rows(url, "select * from public.events where type = 'feedback.created' and aggregate_id = %s",
                       (post_id,))
    deliveries = h.rows(url, "select * from public.event_deliveries where event_id = %s", (created["id"],))
    assert {d["agent"] for d in deliveries} == SUBSCRIBED
    for delivery in deliveries:
        assert (delivery["agent"], delivery["status"], delivery["attempts"]) == (delivery["agent"], "succeeded", 1), \
            delivery["last_error"]
        [attempt] = h.attempts_of(url, delivery["id"])
        assert attempt["outcome"] == "succeeded"
        assert attempt["worker"].startswith(f"{delivery['agent']}@")  # claimed by that agent's own process

    chain = h.rows(url, "select type, metadata from public.events where metadata ->> 'correlation_id' = %s",
                   (str(created["id"]),))
    types = {e["type"] for e in chain}
    assert {"feedback.created", "sentiment.analyzed", "priority.calculated", "notification.sent"} <= types
    assert types & {"theme.detected", "theme.updated"}
    follow_ons = [e for e in chain if e["type"] != "feedback.created"]
    assert all(int(e["metadata"]["depth"]) >= 1 and e["metadata"]["causation_id"] for e in follow_ons)

    statuses = h.statuses_since(url, base.since)
    assert set(statuses) == {"succeeded"}
    assert h.scalar(url, "select count(*) from public.sentiment_analysis where feedback_id = %s", (post_id,)) == 1
    assert h.scalar(url, "select count(*) from public.priority_scores where feedback_id = %s", (post_id,)) == 1
    base.assert_exactly_once()



def publish_tick(url: str, project_id: uuid.UUID, at: object) -> None:
    """A clock.tick for ``project_id`` standing for time ``at``, as the sweep's schedule publishes it."""
    with h.connect(url) as conn:
        conn.execute("insert into public.events (type, aggregate_type, aggregate_id, payload, metadata) "
                     "values ('clock.tick', 'clock', %s, %s, %s)",
                     (project_id, Jsonb({"at": at.isoformat()}),  # type: ignore[attr-defined]
                      Jsonb({"project_id": str(project_id), "producer": "test.clock"})))


@pytest.mark.timeout(180)
def test_competitive_engagement_and_roadmap_over_http(stack: Stack, slack: FakeSlackServer) -> None:
    """A competitor mentioned with switching intent, a user crossing into engaged,
    an approved spec; then time moves on by a clock.tick: the user is at risk and
    the spec stalled. Every delivery succeeds, nothing twice."""
    assert stack.database_url
    url = stack.database_url
    base = h.baseline(url, slack)
    with h.connect(url) as conn:
        conn.execute("update public.projects set settings = settings || %s where id = %s",
                     (Jsonb({"competitor_threat_threshold": 1}), base.project_id))
        author = conn.execute("select owner_id from public.projects where id = %s", (base.project_id,)
                              ).fetchone()["owner_id"]  # type: ignore[index]
        conn.execute("insert into public.competitors (project_id, name, domains) values (%s, 'Asana', %s)",
                     (base.project_id, ["asana.com"]))
        post_id = conn.execute("insert into public.posts (project_id, author_id, title, body) values (%s, %s, %s, %s) "
                               "returning id", (base.project_id, author, "We are switching to Asana",
                                                "Asana has a timeline view and we need one.")).fetchone()["id"]  # type: ignore[index]
        for text in ("Any news?", "Still needed"):
            conn.execute("insert into public.comments (post_id, author_id, body) values (%s, %s, %s)",
                         (post_id, author, text))
        spec_id = conn.execute("insert into public.specs (project_id, title) values (%s, 'Timeline view') "
                               "returning id", (base.project_id,)).fetchone()["id"]  # type: ignore[index]
        conn.execute("update public.specs set status = 'approved' where id = %s", (spec_id,))
    h.settle(stack, timeout=90)

    def of(kind: str) -> list[dict[str, object]]:
        return h.rows(url, "select * from public.events where type = %s and metadata ->> 'project_id' = %s",
                      (kind, str(base.project_id)))

    [mentioned] = of("competitor.mentioned")
    assert mentioned["payload"]["switching_intent"] is True  # type: ignore[index]
    assert [e["payload"]["feature"] for e in of("competitor.feature_detected")] == ["timeline view"]  # type: ignore[index]
    assert len(of("competitive.threat_identified")) == 1
    [engaged] = of("user.engaged")
    assert engaged["aggregate_id"] == author
    [updated] = of("roadmap.updated")
    assert updated["payload"]["status"] == "approved"  # type: ignore[index]

    later = h.now(url) + timedelta(days=15)
    publish_tick(url, base.project_id, later)
    publish_tick(url, base.project_id, later + timedelta(hours=1))  # the next hour: nothing new
    h.settle(stack, timeout=60)
    [at_risk] = of("user.at_risk")
    assert at_risk["aggregate_id"] == author
    [stalled] = of("roadmap.stalled")
    assert stalled["aggregate_id"] == spec_id and stalled["payload"]["reason"] == "no_progress"  # type: ignore[index]
    assert h.scalar(url, "select count(*) from public.event_deliveries where agent in "
                         "('competitive', 'engagement', 'roadmap') and event_created_at >= %s", (base.since,)) >= 9
    base.assert_exactly_once()


def signed_click(notification: str, *, secret: str = SIGNING_SECRET, age: float = 0) -> tuple[bytes, dict[str, str]]:
    """Slack's interaction callback for a "Useful" click, signed as Slack signs it."""
    payload = {"type": "block_actions", "user": {"id": "U7", "username": "pm"},
               "actions": [{"action_id": "notification_useful", "value": notification}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time() - age))
    return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp,
                  "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)}


@pytest.mark.timeout(120)
def test_a_click_on_a_sent_message_reaches_slack_actions_and_the_report(stack: Stack,
                                                                         slack: FakeSlackServer) -> None:
    """notify's message carries the buttons; Slack's callback for a click goes to
    the slack_actions function over HTTP; the report counts it as useful."""
    assert stack.database_url
    url = stack.database_url
    base = h.baseline(url, slack)
    h.post(url, base.project_id)
    h.settle(stack, timeout=60)
    messages = slack.posted[base.slack_before:]
    blocks = messages[0]["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    notification = blocks[1]["elements"][0]["value"]
    actions = stack.functions["slack_actions"].url

    def send(body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(actions, content=body, headers=headers, timeout=10)

    assert send(*signed_click(notification, secret="wrong")).status_code == 401
    assert send(*signed_click(notification, age=10 * 60)).status_code == 401  # a replay
    first, repeated = send(*signed_click(notification)), send(*signed_click(notification))
    assert [r.json()["results"] for r in (first, repeated)] == [["recorded"], ["repeated"]]
    with h.connect(url) as conn:
        counted = report(conn, base.since, base.project_id)
    assert counted["feedback"] == {"useful": 1, "not_useful": 0, "messages_rated": 1, "useful_share": 1.0}
    assert counted["outcomes"]["sent"] == len(messages) >= 1
    base.assert_exactly_once()


def test_functions_are_registered_under_the_advertised_host(pg_server: str) -> None:
    """``signalsloop dev --advertise-host host.docker.internal``: pg_net in a
    local Supabase container reaches the host's functions by that name."""
    with h.fresh_database(pg_server) as url:
        stack = Stack(database_url=url, advertise_host="host.docker.internal")
        try:
            stack.start()
            registered = {r["name"]: r["endpoint_url"]
                          for r in h.rows(url, "select name, endpoint_url from agents where endpoint_url is not null")}
        finally:
            stack.stop()
    # slack_actions is called by Slack, not by the doorbell: it has no registry entry.
    assert set(registered) == set(stack.functions) - {"slack_actions"}
    assert all(u == f"http://host.docker.internal:{stack.functions[n].port}/" for n, u in registered.items())
