"""Slack's interaction callbacks on the real database: signed right, signed
wrong, replayed (an old timestamp) and repeated; one verdict per message and person."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

import flask
import pytest
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from functions.slack_actions.actions import SlackActions
from shared.postgres_store import PostgresStore
from shared.settings import Settings
from tests.functions.conftest import rows
from tests.helpers import Seed

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def client(store: PostgresStore) -> Any:
    actions = SlackActions(Settings(slack_signing_secret=SecretStr(SIGNING_SECRET)), store)
    app = flask.Flask("slack-actions")
    app.add_url_rule("/", "handle", lambda: actions(flask.request), methods=["GET", "POST", "PUT", "DELETE"])
    return app.test_client()


def a_notification(seed: Seed) -> UUID:
    project = seed.project()
    row = seed.conn.execute("insert into notifications (project_id, dedupe_key, text, status, importance) "
                            "values (%s, %s, 'Theme X reached 20 items', 'sent', 'high') returning id",
                            (project, f"k-{uuid4()}")).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def body_for(notification: UUID | str, action: str = "notification_useful", user: str = "U123") -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": "ann"},
               "actions": [{"action_id": action, "block_id": "signalsloop_feedback", "value": str(notification)}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def post(client: Any, body: bytes, *, secret: str = SIGNING_SECRET, age: float = 0) -> Any:
    timestamp = str(int(time.time() - age))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return client.post("/", data=body, content_type="application/x-www-form-urlencoded",
                       headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})


def feedback(seed: Seed) -> list[dict[str, Any]]:
    return rows(seed, "select * from notification_feedback order by id")


def test_a_signed_click_is_recorded_once_per_person(client: Any, seed: Seed) -> None:
    note = a_notification(seed)

    first = post(client, body_for(note))
    repeated = post(client, body_for(note))  # a double click, or Slack redelivering
    changed_mind = post(client, body_for(note, "notification_not_useful"))
    colleague = post(client, body_for(note, "notification_not_useful", user="U999"))

    assert [r.status_code for r in (first, repeated, changed_mind, colleague)] == [200] * 4
    assert [r.json["results"] for r in (first, repeated, changed_mind, colleague)] == [
        ["recorded"], ["repeated"], ["repeated"], ["recorded"]]
    got = feedback(seed)
    assert [(f["slack_user_id"], f["verdict"]) for f in got] == [("U123", "useful"), ("U999", "not_useful")]
    assert got[0]["notification_id"] == note and got[0]["slack_user_name"] == "ann"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_than_post_get_405_naming_post(client: Any, method: str) -> None:
    reply = client.open("/", method=method)
    assert reply.status_code == 405 and reply.headers["Allow"] == "POST"
    assert reply.json["error"] == "method_not_allowed" and "POST Slack interactions" in reply.json["message"]


def test_a_wrong_signature_is_refused_with_401_and_nothing_is_written(client: Any, seed: Seed) -> None:
    note = a_notification(seed)
    reply = post(client, body_for(note), secret="not-the-signing-secret")
    assert reply.status_code == 401 and reply.json["error"] == "unauthorized"
    unsigned = client.post("/", data=body_for(note), content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 401
    assert feedback(seed) == []


def test_a_replayed_callback_with_an_old_timestamp_is_refused(client: Any, seed: Seed) -> None:
    note = a_notification(seed)
    assert post(client, body_for(note), age=6 * 60).status_code == 401
    assert post(client, body_for(note), age=60).status_code == 200  # within Slack's five minutes
    assert len(feedback(seed)) == 1


def test_a_tampered_body_fails_the_signature(client: Any, seed: Seed) -> None:
    note, other = a_notification(seed), a_notification(seed)
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=timestamp, body=body_for(note))
    reply = client.post("/", data=body_for(other), content_type="application/x-www-form-urlencoded",
                        headers={"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": signature})
    assert reply.status_code == 401 and feedback(seed) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"payload=%7Bnot-json", "payload"),
        (b"nothing=here", "payload"),
        (urlencode({"payload": json.dumps({"type": "view_submission"})}).encode(), "block_actions"),
        (body_for("not-a-uuid"), "not a notification id"),
    ],
)
def test_signed_but_malformed_payloads_get_400(client: Any, seed: Seed, body: bytes, says: str) -> None:
    reply = post(client, body)
    assert reply.status_code == 400 and says in reply.json["message"]
    assert feedback(seed) == []


def _payload(**changes: Any) -> bytes:
    payload = {"type": "block_actions", "user": {"id": "U1", "username": "ann"},
               "actions": [{"action_id": "notification_useful", "value": str(uuid4())}], **changes}
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_payload(actions=[1]), "list of objects"),
        (_payload(actions="abc"), "list of objects"),
        (_payload(actions=[None]), "list of objects"),
        (_payload(user={"id": {"nested": 1}}), "user.id"),
        (_payload(user={"id": "U1\udc00"}), "user.id"),  # json.dumps writes it as an escape
        (_payload(user={"id": "U1\x00"}), "user.id"),
        (_payload(user={"id": "U1", "username": "a\x00b"}), "username"),
        (b"payload=" + b"%5B" * 100_000, "payload"),  # nesting past the recursion limit
    ],
)
def test_signed_payloads_of_the_wrong_shape_get_400_not_500(client: Any, seed: Seed, body: bytes,
                                                           says: str) -> None:
    """Each of these raised inside the function (AttributeError, RecursionError,
    a psycopg encoding error), a 500 with a traceback."""
    reply = post(client, body)
    assert reply.status_code == 400 and says in reply.json["message"], reply.get_data(as_text=True)[:300]
    assert feedback(seed) == []


@pytest.mark.parametrize(
    ("timestamp", "signature", "body"),
    [
        ("9" * 5000, "v0=00", b"payload=x"),  # int() refuses 5,000 digits
        ("\u00b2", "v0=00", b"payload=x"),  # a digit to str.isdigit, not to int()
        (None, "v0=\u00e9", b"payload=x"),  # hmac.compare_digest refuses non-ASCII str
        (None, "v0=00", b"payload=\xff"),  # slack-sdk decodes the body before comparing
    ],
)
def test_unsigned_requests_with_odd_headers_or_bytes_get_401_not_500(client: Any, seed: Seed, timestamp: str | None,
                                                                    signature: str, body: bytes) -> None:
    headers = {"X-Slack-Request-Timestamp": timestamp or str(int(time.time())), "X-Slack-Signature": signature}
    reply = client.post("/", data=body, content_type="application/x-www-form-urlencoded", headers=headers)
    assert reply.status_code == 401 and reply.json["error"] == "unauthorized"
    assert feedback(seed) == []


def test_unknown_notifications_and_other_buttons_change_nothing(client: Any, seed: Seed) -> None:
    assert post(client, body_for(uuid4())).json["results"] == ["unknown_notification"]
    assert post(client, body_for(a_notification(seed), action="some_other_button")).json["results"] == []
    assert feedback(seed) == []


def test_without_a_signing_secret_every_request_is_refused(store: PostgresStore, seed: Seed) -> None:
    actions = SlackActions(Settings(slack_signing_secret=None), store)
    app = flask.Flask("unconfigured")
    app.add_url_rule("/", "handle", lambda: actions(flask.request), methods=["POST"])
    reply = post(app.test_client(), body_for(a_notification(seed)))
    assert reply.status_code == 500 and "SLACK_SIGNING_SECRET" in reply.json["message"]
    assert feedback(seed) == []
