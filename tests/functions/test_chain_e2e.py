"""The agents over HTTP on the real stack: embedded PostgreSQL, real
functions-framework servers and the real relay. One theme of 20 posts (the
default threshold) becomes a spec draft and its notification."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from signalsloop.local.stack import Stack
from tests.conftest import url_for
from tests.fakes.slack_server import FakeSlackServer

VARIANTS = ["Please add a dark mode", "Dark mode please", "We need a dark mode", "Add dark mode to the app",
            "A dark mode would be great"]


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture
def stack(pg_server: str, slack: FakeSlackServer) -> Iterator[Stack]:
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"create database {name} template signalsloop_template")
    env = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_CHANNEL": "#product", "SLACK_BASE_URL": slack.api_base_url}
    with Stack(database_url=url_for(pg_server, name), sweep_interval=0.2, extra_env=env) as running:
        yield running
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


def test_twenty_posts_of_one_theme_become_one_spec_draft_and_its_notification(stack: Stack,
                                                                              slack: FakeSlackServer) -> None:
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as db:
        user = db.execute("insert into auth.users (email) values ('pm@example.com') returning id").fetchone()["id"]
        project = db.execute("insert into projects (name, slug, owner_id) values ('Acme', 'acme', %s) returning id",
                             (user,)).fetchone()["id"]
        for i in range(20):
            db.execute("insert into posts (project_id, author_id, title, body) values (%s, %s, %s, %s)",
                       (project, user, VARIANTS[i % len(VARIANTS)], f"The white screen hurts my eyes at night ({i})"))
        counts = stack.wait_settled(timeout=90)
        assert set(counts) == {"succeeded"}, counts

        themes = db.execute("select * from themes").fetchall()
        assert [t["feedback_count"] for t in themes] == [20]
        [reached] = db.execute("select * from events where type = 'theme.threshold_reached'").fetchall()
        assert reached["payload"]["feedback_count"] == 20
        [spec] = db.execute("select * from specs").fetchall()
        assert spec["status"] == "draft" and spec["source"] == "agent" and spec["theme_id"] == themes[0]["id"]
        evidence = spec["content"]["evidence"]
        posts = {p["id"] for p in db.execute("select id from posts")}
        assert evidence and all(uuid.UUID(e["feedback_id"]) in posts for e in evidence)
        [drafted] = db.execute("select * from events where type = 'spec.auto_drafted'").fetchall()
        assert drafted["metadata"]["causation_id"] == str(reached["id"])
        assert drafted["metadata"]["correlation_id"] == reached["metadata"]["correlation_id"]
        [check] = db.execute("select * from spec_quality_checks").fetchall()  # the draft's quality, version 1
        assert check["spec_id"] == spec["id"] and check["spec_version"] == 1 and 0 < check["score"] <= 100
        [checked] = db.execute("select * from events where type = 'spec.quality_checked'").fetchall()
        assert checked["metadata"]["causation_id"] == str(drafted["id"])

        sent = db.execute("select event_type, status, channel from notifications where status = 'sent' "
                          "order by event_type").fetchall()
        assert [(n["event_type"], n["status"]) for n in sent] == [("spec.auto_drafted", "sent"),
                                                                  ("theme.threshold_reached", "sent")]
        assert all(n["channel"] for n in sent), "the channel Slack answered with is recorded"
        messages = slack.posted
        assert len(messages) == 2 and all(m["channel"] == "#product" for m in messages)
        assert any("Spec drafted" in m["text"] for m in messages)
        attempts = db.execute("select count(*) as n from delivery_attempts").fetchone()["n"]
        deliveries = db.execute("select count(*) as n from event_deliveries").fetchone()["n"]
        assert attempts >= deliveries
