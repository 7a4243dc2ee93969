"""Builders for the agent tests.

Pure tests build :class:`DomainEvent` values by hand (:func:`make_event`).
Database tests drive the real agents through the real :class:`Runtime` (Flask
test client, real PostgresStore, the deterministic offline analyzer) with the
webhook body of real event rows (:class:`Pipeline`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import flask
import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from functions.duplicate.agent import DuplicateAgent
from functions.notify.agent import NotifyAgent
from functions.priority.agent import PriorityAgent
from functions.sentiment.agent import SentimentAgent
from functions.spec_quality.agent import SpecQualityAgent
from functions.spec_writer.agent import SpecWriterAgent
from functions.theme.agent import ThemeAgent
from shared.agent import Deps
from shared.analyzers.offline import OfflineAnalyzer
from shared.events import DomainEvent, EventMetadata, WebhookPayload
from shared.ports import Notifier
from shared.postgres_store import PostgresStore
from shared.runtime import Runtime
from shared.settings import Settings
from tests.fakes.slack_server import FakeSlackServer
from tests.helpers import Seed

SECRET = "agent-tests-secret"
PROJECT = UUID("00000000-0000-4000-8000-00000000000a")
FEEDBACK = UUID("00000000-0000-4000-8000-0000000000fb")
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

NotifierFactory = Callable[[Mapping[str, Any]], Notifier | None]


def make_event(
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    aggregate_type: str = "feedback",
    aggregate_id: UUID = FEEDBACK,
    project_id: UUID = PROJECT,
    event_id: UUID | None = None,
    correlation_id: UUID | None = None,
    depth: int = 0,
    created_at: datetime | None = T0,
) -> DomainEvent:
    """An event as the runtime would parse it from a webhook."""
    eid = event_id or uuid4()
    metadata = EventMetadata(project_id=project_id, correlation_id=correlation_id or eid, depth=depth,
                             timestamp=created_at, producer="test")
    return DomainEvent(id=eid, type=event_type, aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                       payload=payload or {}, metadata=metadata, created_at=created_at)


def assert_follows(out: DomainEvent, cause: DomainEvent, producer: str) -> None:
    """``out`` is in ``cause``'s chain, one hop further."""
    assert out.metadata.causation_id == cause.id
    assert out.correlation_id == cause.correlation_id
    assert out.depth == cause.depth + 1
    assert out.metadata.producer == producer
    assert out.project_id == cause.project_id
    assert DomainEvent.from_record(out.to_record()) == out  # survives the trip through the events table


def writes_to(decision: Any, table: str) -> list[dict[str, Any]]:
    return [dict(row) for w in decision.writes if w.table == table for row in w.rows]


@pytest.fixture(scope="session")
def analyzer() -> OfflineAnalyzer:
    """The real offline analyzer, warmed once (lexicons and embedding table)."""
    a = OfflineAnalyzer()
    a.sentiment(["warm up"])
    a.embed(["warm up"])
    return a


# -- the real agents on the real database -------------------------------------

AGENTS: dict[str, Callable[[], Any]] = {
    "sentiment": SentimentAgent, "duplicate": DuplicateAgent, "theme": ThemeAgent,
    "spec_writer": SpecWriterAgent, "notify": NotifyAgent, "priority": PriorityAgent,
    "spec_quality": SpecQualityAgent,
}


def webhook(row: Mapping[str, Any]) -> dict[str, Any]:
    """The body pg_net / the relay would POST for an ``events`` row."""
    return WebhookPayload.for_event(json.loads(json.dumps(dict(row), default=str)))


class Pipeline:
    """Every agent behind its own Runtime, sharing one store, the offline
    analyzer and a notifier factory (no Slack unless given)."""

    def __init__(self, store: PostgresStore, seed: Seed, analyzer: OfflineAnalyzer,
                 notifier_factory: NotifierFactory | None = None) -> None:
        self.store, self.seed = store, seed
        # These tests drive each delivery by its own request and look at each
        # answer; draining (tested in tests/shared/test_drain.py) is off.
        seed.configure(drain_budget_ms=0)
        settings = Settings(signalsloop_secret=SecretStr(SECRET), database_url="unused")
        self.deps = Deps(settings, store, lambda: analyzer, notifier_factory or (lambda project: None))
        self.apps: dict[str, flask.Flask] = {}
        for name, build in AGENTS.items():
            runtime = Runtime(build(), deps_factory=lambda s: self.deps, settings=settings)
            app = flask.Flask(f"agent-{name}")
            app.add_url_rule("/", name, lambda r=runtime: r(flask.request), methods=["POST"])
            self.apps[name] = app

    def deliver(self, agent: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """POST the event's webhook to ``agent``; the JSON answer plus ``code``."""
        reply = self.apps[agent].test_client().post(
            "/", json=webhook(row), headers={"Authorization": f"Bearer {SECRET}"})
        return {"code": reply.status_code, **(reply.json or {})}

    def run(self, agent: str, event_type: str) -> list[dict[str, Any]]:
        """Deliver every stored ``event_type`` event to ``agent``, one after another."""
        return [self.deliver(agent, row) for row in self.seed.events(event_type)]

    def run_concurrently(self, agent: str, rows: list[dict[str, Any]], rounds: int = 50) -> int:
        """Fire all deliveries at once from threads; re-post the ones that answered
        "busy" (a serialized sibling in flight) until each one is finished. Returns
        how many rounds it took."""
        waiting = {str(r["id"]): r for r in rows}
        for n in range(1, rounds + 1):
            with ThreadPoolExecutor(max_workers=len(waiting)) as pool:
                replies = list(pool.map(lambda r: self.deliver(agent, r), waiting.values()))
            for reply in replies:
                assert reply["code"] == 200, reply
                if reply["status"] in ("succeeded", "finished"):
                    waiting.pop(reply["event_id"], None)
            if not waiting:
                return n
        raise AssertionError(f"{len(waiting)} {agent} deliveries never finished")


@pytest.fixture
def store(db_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore(db_url, max_size=8)
    yield s
    s.close()


@pytest.fixture
def pipeline(store: PostgresStore, seed: Seed, analyzer: OfflineAnalyzer) -> Pipeline:
    return Pipeline(store, seed, analyzer)


def delivery_status(seed: Seed, event_id: Any, agent: str) -> dict[str, Any]:
    (row,) = seed.deliveries(event_id=event_id, agent=agent)
    return row


def rows(seed: Seed, query: str, *params: Any) -> list[dict[str, Any]]:
    """Rows as dicts, through the test's own connection."""
    return seed.conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


def users(seed: Seed, n: int) -> list[UUID]:
    return [seed.user() for _ in range(n)]


def vote(seed: Seed, post: UUID, voters: list[UUID]) -> None:
    for user in voters:
        seed.conn.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, user))


@pytest.fixture
def slack(no_proxy: None) -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as fake:
        yield fake


@pytest.fixture
def slack_pipeline(store: PostgresStore, seed: Seed, analyzer: OfflineAnalyzer, slack: FakeSlackServer) -> Pipeline:
    """Notifiers built as in production (build_notifier from project_integrations), aimed at the fake."""
    from shared.notifiers import build_notifier

    settings = Settings(slack_base_url=slack.api_base_url, slack_bot_token=None, slack_webhook_url=None)
    return Pipeline(store, seed, analyzer, lambda project: build_notifier(project, settings))
