"""The agent runtime over HTTP (Flask test client) on a real database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import flask
import pytest

from shared.agent import Decision, Deps
from shared.errors import PermanentError, TransientError
from shared.events import DomainEvent, WebhookPayload
from shared.postgres_store import PostgresStore
from shared.publish import follow_on
from shared.runtime import Runtime
from shared.settings import Settings
from shared.store import Write
from tests.helpers import Seed

SECRET = "s3cret-for-tests"


@dataclass
class ScriptedAgent:
    """Writes a sentiment row and publishes sentiment.analyzed, or raises what it is told to."""

    name: str = "sentiment"
    raises: list[BaseException] | None = None
    loads: int = 0

    def load(self, event: DomainEvent, deps: Deps) -> dict[str, Any]:
        self.loads += 1
        if self.raises:
            raise self.raises.pop(0)
        return {"post": deps.store.select("posts", eq={"id": event.aggregate_id})[0]}

    def decide(self, event: DomainEvent, context: dict[str, Any]) -> Decision:
        row = {"feedback_id": event.aggregate_id, "project_id": event.project_id, "label": "positive",
               "score": 0.5, "confidence": 0.9, "model": "scripted", "source_event_id": event.id}
        out = follow_on(event, agent=self.name, event_type="sentiment.analyzed", aggregate_type="feedback",
                        aggregate_id=event.aggregate_id, payload={"label": "positive"})
        return Decision(writes=[Write("sentiment_analysis", [row], ("feedback_id",))], events=[out])


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(db_url)
    yield s
    s.close()


def make_client(agent: Any, store: PostgresStore, **settings: Any) -> flask.testing.FlaskClient:
    cfg = Settings(signalsloop_secret=SECRET, database_url="unused", **settings)

    def deps_factory(s: Settings) -> Deps:
        return Deps(s, store, lambda: pytest.fail("analyzer not expected"), lambda project: None)

    runtime = Runtime(agent, deps_factory=deps_factory, settings=cfg)
    app = flask.Flask("test")
    app.add_url_rule("/", "agent", lambda: runtime(flask.request), methods=["POST"])
    return app.test_client()


def webhook(event_row: dict[str, Any]) -> dict[str, Any]:
    return WebhookPayload.for_event(json.loads(json.dumps(event_row, default=str)))


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture
def created(seed: Seed) -> dict[str, Any]:
    seed.post(seed.project(), "Love the new editor")
    return seed.events("feedback.created")[0]


def test_requests_without_the_secret_get_401_and_touch_nothing(store: PostgresStore, created: dict[str, Any],
                                                               seed: Seed) -> None:
    client = make_client(ScriptedAgent(), store)
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET}]:
        reply = client.post("/", json=webhook(created), headers=headers)
        assert reply.status_code == 401 and reply.json["error"] == "unauthorized"
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_other_methods_than_post_get_405_and_run_nothing(store: PostgresStore, created: dict[str, Any], seed: Seed,
                                                         method: str) -> None:
    """functions-framework routes every method to the function; only POST is a doorbell."""
    runtime = Runtime(ScriptedAgent(), settings=Settings(signalsloop_secret=SECRET, database_url="unused"))
    app = flask.Flask("t")
    app.add_url_rule("/", "a", lambda: runtime(flask.request), methods=[method])
    reply = app.test_client().open("/", method=method, json=webhook(created), headers=auth())
    assert reply.status_code == 405 and reply.headers["Allow"] == "POST"
    assert reply.json["error"] == "method_not_allowed" and f"{method} is not allowed" in reply.json["message"]
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_missing_secret_setting_refuses_everything(store: PostgresStore, created: dict[str, Any], seed: Seed,
                                                   secret: str | None) -> None:
    """An empty SIGNALSLOOP_SECRET was a secret: "Authorization: Bearer " passed."""
    runtime = Runtime(ScriptedAgent(), settings=Settings(signalsloop_secret=secret))
    app = flask.Flask("t")
    app.add_url_rule("/", "a", lambda: runtime(flask.request), methods=["POST"])
    for header in (f"Bearer {SECRET}", f"Bearer {secret or ''}"):
        reply = app.test_client().post("/", json=webhook(created), headers={"Authorization": header})
        assert reply.status_code == 500 and "SIGNALSLOOP_SECRET is not set" in reply.json["message"]
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b"not json", "not valid JSON"),
        (lambda b: b"[]", "JSON object"),
        (lambda b: b"", "empty body"),
        (lambda b: {**b, "type": "UPDATE"}, "type: Input should be 'INSERT'"),
        (lambda b: {**b, "table": "posts"}, "table: Input should be 'events'"),
        (lambda b: {**b, "extra": 1}, "extra: Extra inputs are not permitted"),
        (lambda b: {k: v for k, v in b.items() if k != "record"}, "record: Field required"),
        (lambda b: {**b, "record": {**b["record"], "id": "nope"}}, "record.id: Input should be a valid UUID"),
        (lambda b: {**b, "record": {**b["record"], "metadata": {}}}, "record.metadata.project_id: Field required"),
        (lambda b: {**b, "record": {**b["record"], "type": "Bad Type"}}, "record.type: String should match"),
    ],
)
def test_malformed_payloads_get_400_naming_the_problem(store: PostgresStore, created: dict[str, Any], seed: Seed,
                                                       mutate: Any, expected: str) -> None:
    body = mutate(webhook(created))
    client = make_client(ScriptedAgent(), store)
    if isinstance(body, bytes):
        reply = client.post("/", data=body, headers={**auth(), "Content-Type": "application/json"})
    else:
        reply = client.post("/", json=body, headers=auth())
    assert reply.status_code == 400, reply.json
    assert expected in reply.json["message"]
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


def test_an_oversized_body_gets_413(store: PostgresStore, created: dict[str, Any]) -> None:
    client = make_client(ScriptedAgent(), store, max_body_bytes=1024)
    body = webhook(created)
    body["record"]["payload"]["body"] = "x" * 5000
    reply = client.post("/", json=body, headers=auth())
    assert reply.status_code == 413 and reply.json["error"] == "payload_too_large"


def test_a_delivery_runs_once_and_a_duplicate_webhook_is_a_200_no_op(store: PostgresStore, seed: Seed,
                                                                    created: dict[str, Any]) -> None:
    agent = ScriptedAgent()
    client = make_client(agent, store)
    first = client.post("/", json=webhook(created), headers=auth())
    assert first.status_code == 200 and first.json["status"] == "succeeded", first.json
    assert first.json["published"] == 1 and first.json["written"] == 1
    again = client.post("/", json=webhook(created), headers=auth())
    assert again.status_code == 200 and again.json["status"] == "finished"
    assert agent.loads == 1
    assert len(seed.events("sentiment.analyzed")) == 1
    assert seed.conn.execute("select label from sentiment_analysis").fetchone()["label"] == "positive"


def test_an_unsubscribed_agent_answers_404_and_runs_nothing(store: PostgresStore, created: dict[str, Any]) -> None:
    agent = ScriptedAgent(name="theme")
    reply = make_client(agent, store).post("/", json=webhook(created), headers=auth())
    assert reply.status_code == 404 and reply.json["error"] == "not_found", reply.json
    assert "not subscribed" in reply.json["message"] and agent.loads == 0


def test_an_unknown_event_id_answers_404(store: PostgresStore, created: dict[str, Any], seed: Seed) -> None:
    body = webhook(created)
    body["record"]["id"] = "00000000-0000-4000-8000-000000000404"
    reply = make_client(ScriptedAgent(), store).post("/", json=body, headers=auth())
    assert reply.status_code == 404 and "unknown event" in reply.json["message"], reply.json
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


def test_retriable_errors_fail_for_retry_and_permanent_ones_dead_letter(store: PostgresStore, seed: Seed,
                                                                        created: dict[str, Any]) -> None:
    seed.configure(backoff_base_ms=0)
    agent = ScriptedAgent(raises=[TransientError("openai timed out"), PermanentError("model refused")])
    client = make_client(agent, store)
    first = client.post("/", json=webhook(created), headers=auth())
    assert first.status_code == 503 and first.json["status"] == "failed"
    second = client.post("/", json=webhook(created), headers=auth())
    assert second.status_code == 422 and second.json["status"] == "dead"
    row = seed.deliveries(agent="sentiment")[0]
    assert row["status"] == "dead" and row["attempts"] == 2 and "model refused" in row["last_error"]
    assert seed.events("sentiment.analyzed") == []


def test_an_unexpected_exception_is_retried_not_lost(store: PostgresStore, seed: Seed,
                                                     created: dict[str, Any]) -> None:
    reply = make_client(ScriptedAgent(raises=[KeyError("bug")]), store).post("/", json=webhook(created),
                                                                              headers=auth())
    assert reply.status_code == 500 and reply.json["status"] == "failed"
    assert "KeyError" in seed.deliveries(agent="sentiment")[0]["last_error"]



def test_concurrent_first_requests_build_the_dependencies_once() -> None:
    """Each build opens a connection pool: a cold function hit by a burst of
    rings once built one per thread and ran the database out of connections."""
    built: list[int] = []

    def factory(s: Settings) -> Deps:
        built.append(1)
        time.sleep(0.05)
        return Deps(s, None, lambda: None, lambda project: None)  # type: ignore[arg-type]

    runtime = Runtime(ScriptedAgent(), deps_factory=factory, settings=Settings(signalsloop_secret=SECRET))
    with ThreadPoolExecutor(8) as pool:
        seen = set(pool.map(lambda _: id(runtime.deps), range(8)))
    assert len(built) == 1 and len(seen) == 1
