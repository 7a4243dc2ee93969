"""Domain changes publish events with full chain metadata and fan out to the
subscribed agents in the same transaction."""

from __future__ import annotations

import psycopg

from tests.helpers import Seed


def test_a_post_yields_one_feedback_created_and_a_pending_delivery_per_subscriber(
    db: psycopg.Connection, seed: Seed
) -> None:
    user = seed.user()
    project = seed.project(owner=user)
    post = seed.post(project, "Export to CSV", "We need CSV exports", author=user)
    [event] = seed.events()
    assert event["type"] == "feedback.created"
    assert event["aggregate_type"] == "feedback" and event["aggregate_id"] == post
    assert event["payload"]["title"] == "Export to CSV"
    meta = event["metadata"]
    assert meta["project_id"] == str(project) and meta["user_id"] == str(user)
    assert meta["correlation_id"] == str(event["id"]) and meta["causation_id"] is None
    assert meta["depth"] == 0 and meta["producer"] == "db.posts" and meta["timestamp"]
    deliveries = seed.deliveries(event_id=event["id"])
    assert sorted(d["agent"] for d in deliveries) == ["duplicate", "notify", "sentiment"]
    assert {d["status"] for d in deliveries} == {"pending"}
    assert all(d["project_id"] == project and d["ring_count"] == 1 for d in deliveries)


def test_votes_comments_and_edits_publish_their_events(db: psycopg.Connection, seed: Seed) -> None:
    user, voter = seed.user(), seed.user()
    project = seed.project(owner=user)
    post = seed.post(project, "Dark mode", author=user)
    db.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, voter))
    db.execute("insert into comments (post_id, author_id, body) values (%s, %s, 'yes please')", (post, voter))
    db.execute("update posts set title = 'Dark mode everywhere' where id = %s", (post,))
    db.execute("update posts set vote_count = vote_count where id = %s", (post,))  # no real change
    types = [e["type"] for e in seed.events()]
    assert types == ["feedback.created", "feedback.voted", "feedback.commented", "feedback.updated"]
    voted = seed.events("feedback.voted")[0]
    assert voted["payload"]["vote_count"] == 1 and voted["payload"]["delta"] == 1
    assert voted["metadata"]["user_id"] == str(voter)
    updated = seed.events("feedback.updated")[0]
    assert updated["payload"]["changed"] == ["title"]
    assert updated["payload"]["previous"]["title"] == "Dark mode"
    # notify hears every event (its subscription is "*").
    assert sorted(d["agent"] for d in seed.deliveries(event_type="feedback.voted")) == ["notify", "priority"]


def test_spec_status_changes_publish_spec_events(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    spec = db.execute("insert into specs (project_id, title) values (%s, 'Dark mode') returning id",
                      (project,)).fetchone()["id"]
    assert seed.events() == []
    db.execute("update specs set status = 'approved' where id = %s", (spec,))
    db.execute("update specs set linked_url = 'https://linear.app/x/1' where id = %s", (spec,))
    db.execute("update specs set status = 'completed' where id = %s", (spec,))
    events = seed.events()
    assert [e["type"] for e in events] == ["spec.approved", "spec.linked", "spec.completed"]
    assert all(e["aggregate_type"] == "spec" and e["aggregate_id"] == spec for e in events)


def test_an_event_without_project_is_refused(db: psycopg.Connection) -> None:
    try:
        db.execute("insert into events (type, aggregate_type, aggregate_id) values "
                   "('feedback.created', 'feedback', gen_random_uuid())")
    except psycopg.errors.CheckViolation as exc:
        assert "project_id" in str(exc)
    else:
        raise AssertionError("an event without metadata.project_id was accepted")
