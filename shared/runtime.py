"""The agent runtime: turns an HTTP doorbell into one run of an agent.

verify secret (401) -> read body (413) -> parse webhook and event (400) ->
claim the delivery (a duplicate or finished one answers 200 and does nothing) ->
load -> decide -> send messages (recorded first) -> complete (writes, events,
state in one transaction) | fail (retry later or dead-letter).

Like inngest-py's ``serve``: ``main.py`` is one line, ``serve(Agent())``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import flask
from pydantic import ValidationError

from shared.agent import Agent, Deps, MessageOutcome
from shared.errors import (
    BadRequest,
    ConfigurationError,
    OutcomeUnknown,
    PayloadTooLarge,
    SignalsLoopError,
    Unauthorized,
    http_status_for,
    is_retriable,
)
from shared.events import DomainEvent, WebhookPayload
from shared.settings import Settings, load_settings
from shared.store import Claim

log = logging.getLogger("signalsloop.runtime")

DepsFactory = Callable[[Settings], Deps]


def describe(error: ValidationError, prefix: str = "") -> str:
    """Pydantic errors as one line naming each bad field."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "body"
        parts.append(f"{prefix}{where}: {item['msg']}")
    return "; ".join(parts)


def check_secret(header: str | None, settings: Settings) -> None:
    """Constant-time bearer check, before anything else is looked at."""
    if settings.signalsloop_secret is None:
        raise ConfigurationError("SIGNALSLOOP_SECRET is not set: refusing every request")
    expected = f"Bearer {settings.signalsloop_secret.get_secret_value()}".encode()
    if not hmac.compare_digest((header or "").encode(), expected):
        raise Unauthorized("missing or wrong bearer token")


def read_body(request: flask.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds the {limit}-byte limit")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
    return body


def parse_event(body: bytes) -> DomainEvent:
    """The webhook body to a validated, upcast event, or a 400 naming the problem."""
    if not body:
        raise BadRequest("empty body: expected the database-webhook JSON payload")
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadRequest("body must be a JSON object (the database-webhook payload)")
    try:
        payload = WebhookPayload.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from exc
    try:
        return DomainEvent.from_record(payload.record)
    except ValidationError as exc:
        raise BadRequest(describe(exc, "record.")) from exc
    except ValueError as exc:
        raise BadRequest(f"record: {exc}") from exc


class Runtime:
    """One agent behind one HTTP endpoint. Dependencies are built on the first
    request, from settings read once."""

    def __init__(self, agent: Agent[Any], deps_factory: DepsFactory | None = None,
                 settings: Settings | None = None) -> None:
        self.agent = agent
        self._deps_factory = deps_factory or default_deps
        self._settings = settings
        self._deps: Deps | None = None
        self.worker = f"{agent.name}@{socket.gethostname()}:{os.getpid()}"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def deps(self) -> Deps:
        if self._deps is None:
            self._deps = self._deps_factory(self.settings)
        return self._deps

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        try:
            check_secret(request.headers.get("Authorization"), self.settings)
            event = parse_event(read_body(request, self.settings.max_body_bytes))
        except SignalsLoopError as exc:
            log.warning("%s rejected request: %s", self.agent.name, exc.message)
            return respond(exc.http_status, exc.to_json())
        body, status = self.handle(event)
        body["ms"] = round((time.perf_counter() - started) * 1000, 2)
        return respond(status, body)

    def handle(self, event: DomainEvent) -> tuple[dict[str, Any], int]:
        base: dict[str, Any] = {"agent": self.agent.name, "event_id": str(event.id)}
        try:
            claim = self.deps.store.claim(event.id, self.agent.name, self.worker)
        except SignalsLoopError as exc:
            return {**base, "status": "not_claimed", **exc.to_json()}, http_status_for(exc)
        if not claim.claimed:
            return {**base, "status": claim.outcome, "delivery_id": claim.delivery_id}, 200
        base["delivery_id"] = claim.delivery_id
        try:
            return {**base, **self.run(event, claim)}, 200
        except Exception as exc:
            return {**base, **self.record_failure(claim, exc)}, http_status_for(exc)

    def run(self, event: DomainEvent, claim: Claim) -> dict[str, Any]:
        context = self.agent.load(event, self.deps)
        decision = self.agent.decide(event, context)
        events = list(decision.events)
        if decision.messages:
            outcomes = deliver_messages(decision.messages, self.deps, event)
            after = getattr(self.agent, "after_sending", None)
            if after is not None:
                events += after(event, outcomes)
        done = self.deps.store.complete(claim, decision.writes, events)
        status = "succeeded" if done.completed else "stale"
        return {"status": status, "written": done.written, "published": done.published,
                "attempt": claim.attempt, "summary": dict(decision.summary)}

    def record_failure(self, claim: Claim, exc: BaseException) -> dict[str, Any]:
        retriable = is_retriable(exc)
        retry_after = getattr(exc, "retry_after", None)
        message = f"{type(exc).__name__}: {exc}"
        log.warning("%s failed attempt %s (%s): %s", self.agent.name, claim.attempt,
                    "retriable" if retriable else "permanent", message)
        try:
            record = self.deps.store.fail(claim, message, retriable=retriable, retry_after=retry_after)
            status = record.status or "failed"
        except SignalsLoopError as store_exc:
            # The lease will expire and the sweep will ring again: still not lost.
            status, message = "failed_unrecorded", f"{message}; recording failed: {store_exc.message}"
        body = exc.to_json() if isinstance(exc, SignalsLoopError) else {"error": "internal_error", "message": message}
        return {"status": status, **body}


def deliver_messages(messages: Sequence[Any], deps: Deps, event: DomainEvent) -> list[MessageOutcome]:
    """Record each message before sending it; a key already handled is never sent again."""
    outcomes = []
    for message in messages:
        row = {**message.model_dump(mode="json"), "dedupe_key": message.key, "event_id": str(event.id),
               "event_type": event.type}
        if not deps.store.rpc("reserve_notification", {"p_row": row}):
            outcomes.append(_already_handled(deps, message))
            continue
        notifier = deps.notifier_for(message.project_id)
        if notifier is None:
            _finish(deps, message.key, "unconfigured", "none")
            outcomes.append(MessageOutcome(message, "unconfigured"))
            continue
        try:
            receipt = notifier.send(message)
        except OutcomeUnknown as exc:
            # It may have been posted: never send it again, and carry on.
            _finish(deps, message.key, "unknown", "slack", error=str(exc))
            outcomes.append(MessageOutcome(message, "unknown", transport="slack"))
            continue
        except Exception as exc:
            _finish(deps, message.key, "failed", "slack", error=str(exc))
            raise
        _finish(deps, message.key, "sent", receipt.transport, response=receipt.model_dump(mode="json"))
        outcomes.append(MessageOutcome(message, "sent", receipt.channel, receipt.transport))
    return outcomes


def _finish(deps: Deps, key: str, status: str, transport: str, *, response: dict[str, Any] | None = None,
            error: str | None = None) -> None:
    deps.store.rpc("finish_notification", {"p_dedupe_key": key, "p_status": status, "p_transport": transport,
                                           "p_response": response, "p_error": error})


def _already_handled(deps: Deps, message: Any) -> MessageOutcome:
    """What an earlier attempt did with this key. One left 'sending' crashed
    mid-send: it may have been posted, so it counts as unknown."""
    rows = deps.store.select("notifications", eq={"dedupe_key": message.key},
                             columns=["status", "channel", "transport"])
    status = rows[0]["status"] if rows else "unknown"
    status = "unknown" if status == "sending" else status
    return MessageOutcome(message, status, rows[0]["channel"] if rows else None,
                          rows[0]["transport"] if rows else None)


def respond(status: int, body: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")


def default_deps(settings: Settings) -> Deps:
    from shared.analyzers import build_analyzer
    from shared.notifiers import build_notifier
    from shared.wiring import build_store

    return Deps(settings, build_store(settings), lambda: build_analyzer(settings),
                lambda project: build_notifier(project, settings))


def serve(agent: Agent[Any], **kwargs: Any) -> Runtime:
    """The HTTP entry point for ``agent`` (a functions-framework target)."""
    return Runtime(agent, **kwargs)
