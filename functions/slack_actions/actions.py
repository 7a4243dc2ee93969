"""Slack's interaction callbacks: a person pressed "Useful" or "Not useful"
under a notification. Not an agent (Slack calls it, not the ledger), so its
secret is Slack's signing secret, not the bearer secret.

verify the signature (slack-sdk's SignatureVerifier; 401 otherwise, and old
timestamps are refused as replays) -> parse the form-encoded ``payload`` (400)
-> record one verdict per message and person (a repeat changes nothing).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

import flask

from shared.errors import BadRequest, ConfigurationError, SignalsLoopError, Unauthorized
from shared.notifiers.slack import NOT_USEFUL, USEFUL
from shared.runtime import read_body, respond
from shared.settings import Settings, load_settings
from shared.store import Store

log = logging.getLogger("signalsloop.slack_actions")
VERDICTS = {USEFUL: "useful", NOT_USEFUL: "not_useful"}


@dataclass(frozen=True)
class Verdict:
    notification_id: UUID
    slack_user_id: str
    slack_user_name: str | None
    verdict: str


def verify(body: bytes, headers: Mapping[str, str], settings: Settings, now: float | None = None) -> None:
    """Slack's v0 signature over the raw body and its timestamp, within five minutes."""
    from slack_sdk.signature import Clock, SignatureVerifier

    if settings.slack_signing_secret is None or not settings.slack_signing_secret.get_secret_value():
        raise ConfigurationError("SLACK_SIGNING_SECRET is not set: refusing every request")

    class _At(Clock):
        def now(self) -> float:
            return time.time() if now is None else now

    verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value(), clock=_At())
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get("x-slack-request-timestamp")
    if not (timestamp or "").strip().isdigit():
        raise Unauthorized("missing or malformed X-Slack-Request-Timestamp")
    if not verifier.is_valid(body, timestamp, lower.get("x-slack-signature")):
        raise Unauthorized("bad Slack signature, or a timestamp older than five minutes")


def parse_verdicts(body: bytes) -> list[Verdict]:
    """The block_actions payload to the verdicts it carries (our buttons only)."""
    try:
        form = parse_qs(body.decode(), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        raise BadRequest(f"expected a form-encoded 'payload' with Slack's JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise BadRequest("only block_actions interactions are handled")
    user = payload.get("user") or {}
    if not isinstance(user, dict) or not user.get("id"):
        raise BadRequest("payload.user.id is missing")
    verdicts = []
    for action in payload.get("actions") or []:
        kind = VERDICTS.get(str(action.get("action_id")))
        if kind is None:
            continue
        try:
            notification = UUID(str(action.get("value")))
        except ValueError:
            raise BadRequest(f"action value {action.get('value')!r} is not a notification id") from None
        verdicts.append(Verdict(notification, str(user["id"]), user.get("username") or user.get("name"), kind))
    return verdicts


class SlackActions:
    """The HTTP entry point. Settings and the store are built on first use."""

    def __init__(self, settings: Settings | None = None, store: Store | None = None) -> None:
        self._settings = settings
        self._store = store

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            from shared.wiring import build_store

            self._store = build_store(self.settings)
        return self._store

    def __call__(self, request: flask.Request) -> flask.Response:
        if request.method != "POST":
            return respond(405, {"error": "method_not_allowed", "message": "POST Slack interactions here"})
        try:
            body = read_body(request, self.settings.max_body_bytes)
            verify(body, dict(request.headers), self.settings)
            results = [self.record(v) for v in parse_verdicts(body)]
        except SignalsLoopError as exc:
            log.warning("slack_actions rejected request: %s", exc.message)
            return respond(exc.http_status, exc.to_json())
        return respond(200, {"ok": True, "results": results})

    def record(self, verdict: Verdict) -> str:
        return str(self.store.rpc("record_notification_feedback", {
            "p_notification_id": verdict.notification_id, "p_slack_user_id": verdict.slack_user_id,
            "p_verdict": verdict.verdict, "p_slack_user_name": verdict.slack_user_name}))


def serve_actions(**kwargs: Any) -> SlackActions:
    return SlackActions(**kwargs)
