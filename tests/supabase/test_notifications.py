"""reserve_notification / finish_notification: one key, at most one message."""

from __future__ import annotations

import json
from uuid import UUID

import psycopg

from tests.helpers import Seed


def reserve(db: psycopg.Connection, project: UUID, key: str = "k1") -> bool:
    row = {"dedupe_key": key, "project_id": str(project), "text": "hello", "importance": "high"}
    return bool(db.execute("select reserve_notification(%s) as ok", (json.dumps(row),)).fetchone()["ok"])


def finish(db: psycopg.Connection, status: str, key: str = "k1") -> None:
    db.execute("select finish_notification(%s, %s, 'slack', %s, null)",
               (key, status, json.dumps({"channel": "C42", "ts": "1.0"})))


def test_a_key_is_sent_once_and_only_a_refused_send_may_be_retried(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    assert reserve(db, project) is True
    assert reserve(db, project) is False, "a row left 'sending' (a crash mid-send) is not sent again"
    finish(db, "failed")
    assert reserve(db, project) is True, "Slack refused it: the retry may send"
    finish(db, "sent")
    assert reserve(db, project) is False
    row = db.execute("select status, channel, sent_at from notifications").fetchone()
    assert row["status"] == "sent" and row["channel"] == "C42" and row["sent_at"] is not None
    assert reserve(db, project, "k2") is True
    finish(db, "unknown", "k2")
    assert reserve(db, project, "k2") is False, "no answer from Slack may mean it posted: never again"
