"""The relay POSTs the webhook body as compact UTF-8 JSON, the way pg_net sends
text (not ``\\uXXXX`` escapes, which make an emoji 12 bytes instead of 4 and
can push a member's post over the functions' body limit)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest

from shared.events import WebhookPayload
from signalsloop.local.relay import Relay, webhook_body
from tests.fakes import Canned, FakeHTTPServer
from tests.helpers import Seed

pytestmark = pytest.mark.timeout(60)
TITLE = "Dark mode 🌙 für Nächte, s'il vous plaît 😀"


def test_the_body_is_compact_utf8_json() -> None:
    record = {"id": "e1", "payload": {"title": "🌙 Nächte"}}
    assert webhook_body(record) == ('{"type":"INSERT","table":"events","schema":"public",'
                                    '"record":{"id":"e1","payload":{"title":"🌙 Nächte"}},"old_record":null}'
                                    ).encode()
    assert len(webhook_body({"payload": {"title": "😀" * 100}})) < 600  # 4 bytes an emoji; escaped, 12 (1,300)


def test_the_relay_posts_utf8_bytes(db: psycopg.Connection[Any], db_url: str, seed: Seed) -> None:
    with FakeHTTPServer() as fake:
        for _ in range(5):
            fake.enqueue(Canned(200, {"ok": True}))
        db.execute("update agents set endpoint_url = %s || '/' || name", (fake.url,))
        relay = Relay(db_url, "s3cret", sweep_interval=5)
        thread = threading.Thread(target=relay.run, daemon=True)
        thread.start()
        try:
            time.sleep(0.5)  # listening
            seed.post(seed.project(), TITLE, body="🚀" * 50)
            deadline = time.monotonic() + 20
            while len(fake.requests) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            relay.stop()
            thread.join(10)
    assert len(fake.requests) == 5  # feedback.created has five subscribers
    record = db.execute("select to_jsonb(e) as r from events e where type = 'feedback.created'").fetchone()["r"]
    for request in fake.requests:
        assert request.header("Content-Type") == "application/json"
        assert ("🚀" * 50).encode("utf-8") in request.body and b"\\u" not in request.body
        assert json.loads(request.body) == json.loads(json.dumps(WebhookPayload.for_event(record), default=str))
        assert int(request.header("Content-Length") or 0) == len(request.body)
