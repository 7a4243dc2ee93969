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
from shared.runtime import check_method, read_body, refusal, respond
from shared.settings import Settings, load_settings
from shared.store import Store
from shared.text import is_utf8, is_valid_unicode

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
    timestamp = (lower.get("x-slack-request-timestamp") or "").strip()
    signature = lower.get("x-slack-signature") or ""
    # Unix seconds in ASCII digits ("²" is a digit to str.isdigit, and int() of
    # 5,000 digits raises), a signature in ASCII and a UTF-8 body: anything else
    # made slack-sdk raise before it compared, a 500 for an unsigned request.
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Unauthorized("missing or malformed X-Slack-Request-Timestamp")
    if not signature.isascii() or not is_utf8(body):
        raise Unauthorized("bad Slack signature, or a timestamp older than five minutes")
    if not verifier.is_valid(body, timestamp, signature):
        raise Unauthorized("bad Slack signature, or a timestamp older than five minutes")


def parse_verdicts(body: bytes) -> list[Verdict]:
    """The block_actions payload to the verdicts it carries (our buttons only)."""
    try:
        form = parse_qs(body.decode(), strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (ValueError, KeyError, RecursionError) as exc:  # bad UTF-8 or JSON, huge integers, deep nesting
        raise BadRequest(f"expected a form-encoded 'payload' with Slack's JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise BadRequest("only block_actions interactions are handled")
    user = payload.get("user") or {}
    if not isinstance(user, dict) or not _storable(user.get("id")) or not user.get("id"):
        raise BadRequest("payload.user.id is missing or not a string")
    name = user.get("username") or user.get("name")
    if name is not None and not _storable(name):
        raise BadRequest("payload.user.username is not a string PostgreSQL can store")
    actions = payload.get("actions") or []
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise BadRequest("payload.actions must be a list of objects")
    verdicts = []
    for action in actions:
        kind = VERDICTS.get(str(action.get("action_id")))
        if kind is None:
            continue
        try:
            notification = UUID(str(action.get("value")))
        except ValueError:
            raise BadRequest(f"action value {action.get('value')!r} is not a notification id") from None
        verdicts.append(Verdict(notification, user["id"], name, kind))
    return verdicts


def _storable(value: object) -> bool:
    """A string a ``text`` column holds: no NUL, no lone surrogate."""
    return isinstance(value, str) and "\x00" not in value and is_valid_unicode(value)


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
        try:
            check_method(request, "Slack interactions")
            body = read_body(request, self.settings.max_body_bytes)
            verify(body, dict(request.headers), self.settings)
            results = [self.record(v) for v in parse_verdicts(body)]
        except SignalsLoopError as exc:
            log.warning("slack_actions rejected request: %s", exc.message)
            return refusal(request, exc)
        return respond(200, {"ok": True, "results": results})

    def record(self, verdict: Verdict) -> str:
        return str(self.store.rpc("record_notification_feedback", {
            "p_notification_id": verdict.notification_id, "p_slack_user_id": verdict.slack_user_id,
            "p_verdict": verdict.verdict, "p_slack_user_name": verdict.slack_user_name}))


def serve_actions(**kwargs: Any) -> SlackActions:
    return SlackActions(**kwargs)
