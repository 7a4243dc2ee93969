"""A notification a crash left 'sending' is resolved by the periodic sweep to
'unknown' and never sent again; one still being sent is left alone."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import psycopg

from tests.helpers import Seed


def reserve(db: psycopg.Connection, key: str, project: UUID, event_id: UUID) -> bool:
    row = {"dedupe_key": key, "project_id": str(project), "event_id": str(event_id), "text": "Dark mode!"}
    return bool(db.execute("select reserve_notification(%s) as ok", (json.dumps(row),)).fetchone()["ok"])


def sending_notification(db: psycopg.Connection, seed: Seed, key: str) -> dict[str, Any]:
    """A notify delivery claimed, its Slack message reserved and being sent."""
    project = seed.project()
    seed.post(project)
    event_id = seed.events("feedback.created")[-1]["id"]
    claim = db.execute("select * from claim_delivery(%s, 'notify', 'test')", (event_id,)).fetchone()
    assert claim["outcome"] == "claimed"
    assert reserve(db, key, project, event_id)
    db.execute("update notifications set created_at = now() - interval '1 hour' where dedupe_key = %s", (key,))
    return {"project": project, "event_id": event_id, "delivery_id": claim["delivery_id"]}


def status(db: psycopg.Connection, key: str) -> str:
    return str(db.execute("select status from notifications where dedupe_key = %s", (key,)).fetchone()["status"])


def test_the_sweep_resolves_a_send_a_crash_interrupted_and_it_is_never_resent(db: psycopg.Connection,
                                                                               seed: Seed) -> None:
    sent = sending_notification(db, seed, "crashed")
    db.execute("update event_deliveries set lease_until = now() - interval '1 second' where id = %s",
               (sent["delivery_id"],))  # the function died mid-send; its lease ran out
    result = db.execute("select run_periodic() as r").fetchone()["r"]
    assert result["notifications_resolved"] == 1
    assert status(db, "crashed") == "unknown"
    assert db.execute("select error from notifications where dedupe_key = 'crashed'").fetchone()["error"] \
        .startswith("the sender stopped")
    assert not reserve(db, "crashed", sent["project"], sent["event_id"]), "an unknown send is never repeated"
    assert db.execute("select run_periodic() as r").fetchone()["r"]["notifications_resolved"] == 0


def test_a_send_still_in_progress_is_left_alone(db: psycopg.Connection, seed: Seed) -> None:
    sending_notification(db, seed, "in-flight")  # the claim's lease is live
    assert db.execute("select run_periodic() as r").fetchone()["r"]["notifications_resolved"] == 0
    assert status(db, "in-flight") == "sending"
