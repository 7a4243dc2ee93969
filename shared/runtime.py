"""The agent runtime: turns an HTTP doorbell into runs of an agent.

POST only (405) -> verify secret (401) -> read body (413) -> check the webhook's shape (400) ->
claim the delivery of the rung event (unknown or unsubscribed ids: 404; a
duplicate or finished one answers 200 and runs nothing) -> run it on the
event as stored in the ledger (the body is only the doorbell) -> go on
claiming the agent's due deliveries (the same project's for a per-project
agent) until none is due or the time budget is spent -> answer.

A run: load -> decide -> send messages (recorded first) -> complete (writes,
events, state in one transaction) | fail (retry later or dead-letter).

Like inngest-py's ``serve``: ``main.py`` is one line, ``serve(Agent())``.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import flask
from pydantic import ValidationError

from shared.agent import Agent, Decision, Deps
from shared.drain import Drain
from shared.errors import (
    BadRequest,
    ConfigurationError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PermanentError,
    SignalsLoopError,
    Unauthorized,
    http_status_for,
    is_infrastructure,
    is_retriable,
)
from shared.events import DomainEvent, WebhookPayload
from shared.outbox import deliver_messages
from shared.settings import Settings, load_settings
from shared.store import Claim, jsonable

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


def check_method(request: flask.Request, what: str) -> None:
    """Functions take POST only; functions-framework routes every method to them."""
    if request.method != "POST":
        raise MethodNotAllowed(f"{request.method} is not allowed: POST {what} here")


def read_body(request: flask.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body of {request.content_length} bytes exceeds the {limit}-byte limit")
    body = _read(request.stream, limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
    return body


def _read(stream: Any, size: int) -> bytes:
    try:
        return bytes(stream.read(size))
    except Exception as exc:  # the server's errors for a broken body (gunicorn's
        # InvalidChunkSize or NoMoreData, werkzeug's ClientDisconnected) have no common base
        raise BadRequest(f"the request body could not be read ({type(exc).__name__}: {str(exc)[:120]})") from None


def refusal(request: flask.Request, error: SignalsLoopError) -> flask.Response:
    """The error response to a refused request, its unread body left unread.

    functions-framework reads whatever body is left after every response
    (``request.get_data()``, into memory, before the response is sent), so a
    300 MB body sent without the secret cost 300 MB and the 401 waited for
    all of it. The request's stream is replaced by an empty one; the server
    (gunicorn) skips the rest of the body in small reads if the connection
    is used again."""
    request.stream = io.BytesIO()  # werkzeug's cached_property: setting it sets what get_data() reads
    response = respond(error.http_status, error.to_json())
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = "POST"
    return response


def parse_doorbell(body: bytes) -> UUID:
    """The rung event's id, from a body of the database-webhook shape, or a
    400 naming the problem. The record's shape is checked, its content is not
    trusted: the run reads the event from the ledger."""
    if not body:
        raise BadRequest("empty body: expected the database-webhook JSON payload")
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge integers, absurd nesting
        raise BadRequest(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(raw, dict):
        raise BadRequest("body must be a JSON object (the database-webhook payload)")
    try:
        payload = WebhookPayload.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None
    try:
        return DomainEvent.model_validate(payload.record).id
    except ValidationError as exc:
        raise BadRequest(describe(exc, "record.")) from None


def stored_event(claim: Claim) -> DomainEvent:
    """The claimed delivery's event as the ledger holds it, upcast; an event
    this code cannot read (a newer version, a broken row) is a permanent
    failure, never processed as if current."""
    try:
        return DomainEvent.from_record(claim.event or {})
    except ValidationError as exc:
        raise PermanentError(f"stored event is invalid: {describe(exc)}") from None


class Runtime:
    """One agent behind one HTTP endpoint. Dependencies are built on the first
    request, from settings read once."""

    def __init__(self, agent: Agent[Any], deps_factory: DepsFactory | None = None,
                 settings: Settings | None = None) -> None:
        self.agent = agent
        self._deps_factory = deps_factory or default_deps
        self._settings = settings
        self._deps: Deps | None = None
        self._deps_lock = threading.Lock()
        self.worker = f"{agent.name}@{socket.gethostname()}:{os.getpid()}"
        self._drainers: threading.BoundedSemaphore | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def deps(self) -> Deps:
        """Built once: concurrent first requests must not each open a pool."""
        if self._deps is None:
            with self._deps_lock:
                if self._deps is None:
                    self._deps = self._deps_factory(self.settings)
        return self._deps

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.perf_counter()
        try:
            check_method(request, "database-webhook payloads")
            check_secret(request.headers.get("Authorization"), self.settings)
            event_id = parse_doorbell(read_body(request, self.settings.max_body_bytes))
            body, status = self.handle(event_id, started)
        except SignalsLoopError as exc:
            log.warning("%s rejected request: %s", self.agent.name, exc.message)
            return refusal(request, exc)
        body["ms"] = round((time.perf_counter() - started) * 1000, 2)
        return respond(status, body)

    def handle(self, event_id: UUID, started: float | None = None) -> tuple[dict[str, Any], int]:
        """Run the rung delivery if it is ours to run, then drain."""
        started = time.perf_counter() if started is None else started
        base: dict[str, Any] = {"agent": self.agent.name, "event_id": str(event_id)}
        try:
            claim = self.deps.store.claim(event_id, self.agent.name, self.worker)
        except SignalsLoopError as exc:
            return {**base, "status": "not_claimed", **exc.to_json()}, http_status_for(exc)
        if claim.outcome == "unknown_event":
            raise NotFound(f"unknown event {event_id}")
        if claim.outcome == "not_subscribed":
            raise NotFound(f"agent {self.agent.name} has no delivery for event {event_id}: not subscribed to its type")
        body: dict[str, Any] = {**base, "status": claim.outcome, "delivery_id": claim.delivery_id}
        status = 200
        if claim.claimed:
            result, status = self.process(claim)
            body.update(result)
        if claim.outcome != "off" and status == 200 and self.drainers.acquire(blocking=False):
            try:
                body["drained"] = self.drain(claim, started)
            finally:
                self.drainers.release()
        return body, status

    @property
    def drainers(self) -> threading.BoundedSemaphore:
        """At most ``drain_concurrency`` requests of this process drain at once;
        the other rings run their own delivery and answer at once. pg_net waits
        for every request of a batch before it sends the next one, so rings
        queued behind many long drains would hold up every later ring."""
        if self._drainers is None:
            self._drainers = threading.BoundedSemaphore(max(1, self.settings.drain_concurrency))
        return self._drainers

    def drain(self, first: Claim, started: float) -> int:
        """Go on with the agent's due deliveries (:mod:`shared.drain`)."""
        return Drain(self.deps.store, self.agent.name, self.worker, lambda c: self.process(c)[1] == 200,
                     self.settings.drain_linger_ms).run(first, started)

    def process(self, claim: Claim) -> tuple[dict[str, Any], int]:
        try:
            return self.run(stored_event(claim), claim), 200
        except Exception as exc:
            return self.record_failure(claim, exc), http_status_for(exc)

    def run(self, event: DomainEvent, claim: Claim) -> dict[str, Any]:
        context = self.agent.load(event, self.deps)
        decision = self.agent.decide(event, context)
        if claim.shadow:
            return self.record_shadow(decision, claim)
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

    def record_shadow(self, decision: Decision, claim: Claim) -> dict[str, Any]:
        """A shadow run's end: what it would write, publish and send, stored
        beside the live path for comparison; no effect of any kind."""
        done = self.deps.store.complete_shadow(claim, shadow_record(decision), decision_model(decision))
        return {"status": "succeeded" if done.completed else "stale", "shadow": True, "written": 0,
                "published": 0, "attempt": claim.attempt, "summary": dict(decision.summary)}

    def record_failure(self, claim: Claim, exc: BaseException) -> dict[str, Any]:
        retriable = is_retriable(exc)
        retry_after = getattr(exc, "retry_after", None)
        message = f"{type(exc).__name__}: {exc}"
        log.warning("%s failed attempt %s (%s): %s", self.agent.name, claim.attempt,
                    "retriable" if retriable else "permanent", message)
        try:
            record = self.deps.store.fail(claim, message, retriable=retriable, retry_after=retry_after,
                                          infrastructure=is_infrastructure(exc))
            status = record.status or "failed"
        except SignalsLoopError as store_exc:
            # The lease will expire and the sweep will ring again: still not lost.
            status, message = "failed_unrecorded", f"{message}; recording failed: {store_exc.message}"
        body = exc.to_json() if isinstance(exc, SignalsLoopError) else {"error": "internal_error", "message": message}
        return {"status": status, **body}


def shadow_record(decision: Decision) -> dict[str, Any]:
    return {"writes": [w.to_json() for w in decision.writes],
            "events": [e.to_record() for e in decision.events],
            "messages": [m.model_dump(mode="json") for m in decision.messages],
            "summary": jsonable(dict(decision.summary))}


def decision_model(decision: Decision) -> str | None:
    """The model named in the decision's result rows (each result records one)."""
    return next((str(row["model"]) for w in decision.writes for row in w.rows if row.get("model")), None)


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
