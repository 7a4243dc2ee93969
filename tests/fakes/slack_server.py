"""A fake Slack: the Web API's ``chat.postMessage`` and an incoming webhook.

Point ``WebClient(base_url=...)`` at :attr:`FakeSlackServer.api_base_url` and
a ``WebhookClient`` at :attr:`FakeSlackServer.webhook_url`. By default both
accept every message (``chat.postMessage`` answers ``ok`` with a fresh ``ts``);
queue failures with :meth:`FakeSlackServer.reject` (``ok: false``) or
:meth:`FakeSlackServer.fail` (an HTTP status).
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes import Canned, FakeHTTPServer, RecordedRequest

POST_MESSAGE_PATH = "/api/chat.postMessage"
WEBHOOK_PATH = "/services/T000FAKE/B000FAKE/fakewebhooksecret"


class FakeSlackServer(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self._ts = itertools.count(100)

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}{WEBHOOK_PATH}"

    def reject(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None,
               path: str = POST_MESSAGE_PATH) -> None:
        """Queue a Web API refusal: ``{"ok": false, "error": error}``."""
        self.enqueue(Canned(status, {"ok": False, "error": error}, headers or {}), path=path)

    def fail(self, status: int, body: str = "", *, path: str | None = None,
             headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Queue a plain-text HTTP failure (any path when ``path`` is ``None``)."""
        self.enqueue(Canned(status, body, headers or {}, delay), path=path)

    @property
    def posted(self) -> list[dict[str, Any]]:
        """Bodies of the ``chat.postMessage`` calls received."""
        return [r.json for r in self.requests_to(POST_MESSAGE_PATH)]

    @property
    def webhook_posts(self) -> list[dict[str, Any]]:
        return [r.json for r in self.requests_to(WEBHOOK_PATH)]

    def default_response(self, request: RecordedRequest) -> Canned:
        if request.path == POST_MESSAGE_PATH:
            return Canned(200, self._posted_answer(request))
        if request.path == WEBHOOK_PATH:
            return Canned(200, "ok")
        return Canned(404, {"ok": False, "error": "unknown_method"})

    def _posted_answer(self, request: RecordedRequest) -> dict[str, Any]:
        if not (request.header("authorization") or "").startswith("Bearer "):
            return {"ok": False, "error": "not_authed"}
        body = request.json or {}
        ts = f"1700000000.{next(self._ts):06d}"
        return {"ok": True, "channel": body.get("channel"), "ts": ts,
                "message": {"type": "message", "text": body.get("text"), "ts": ts}}
