"""Helpers for the tests that drive the real local stack (functions-framework
servers, the relay, PostgreSQL): fresh databases, tuned ledger settings,
feedback written through SQL, bounded waits, and the lost / duplicated checks
``make bench`` uses.

Also two HTTP fakes built on :class:`tests.fakes.FakeHTTPServer` (loopback only):
an OpenAI server that answers every structured-output request the agents make,
and a proxy that fails its first requests and then forwards to a function.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from signalsloop.benchmarks.bench import DUPLICATED_SQL, LOST_SQL
from signalsloop.local.stack import Stack
from tests.conftest import TEMPLATE, url_for
from tests.fakes import Canned, FakeHTTPServer, RecordedRequest
from tests.fakes.openai_server import CHAT_PATH, FakeOpenAIServer, chat_completion
from tests.fakes.slack_server import FakeSlackServer

# Fast ledger settings: re-ring unanswered doorbells after 1 s, short backoff
# and lease grace, a circuit that reopens quickly.
FAST_CONFIG: dict[str, Any] = {"redelivery_after_seconds": 1, "backoff_base_ms": 100, "lease_grace_ms": 200,
                               "circuit_cooldown_seconds": 1}
DEFAULT_TIMEOUT_MS = 10_000
PROJECT_SETTINGS = {"theme_threshold": 10_000, "notify_min_importance": "low", "slack_rate_per_minute": 10_000}
FEEDBACK = ["Dark mode please, my eyes hurt at night.", "CSV export is broken again and I am frustrated.",
            "I love the new calendar sync, great work!", "Is Google login on the roadmap?",
            "The mobile app is slow since the update.", "Please add keyboard shortcuts for power users."]


# -- databases ------------------------------------------------------------------


@contextmanager
def fresh_database(pg_server: str) -> Iterator[str]:
    """A new database cloned from the session's migrated template; dropped afterwards."""
    name = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"create database {name} template {TEMPLATE}")
    try:
        yield url_for(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")


def connect(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def configure(url: str, **values: Any) -> None:
    sets = ", ".join(f"{k} = %s" for k in values)
    with connect(url) as conn:
        conn.execute(f"update public.backbone_config set {sets}", tuple(values.values()))


def set_agent(url: str, name: str, **values: Any) -> None:
    sets = ", ".join(f"{k} = %s" for k in values)
    with connect(url) as conn:
        conn.execute(f"update public.agents set {sets} where name = %s", (*values.values(), name))


def now(url: str) -> Any:
    with connect(url) as conn:
        row = conn.execute("select now() as t").fetchone()
    assert row is not None
    return row["t"]


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def rows(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with connect(url) as conn:
        return conn.execute(query, params).fetchall()


# -- the stack --------------------------------------------------------------------


@contextmanager
def running_stack(pg_server: str, slack: FakeSlackServer, log_dir: Path,
                  **env: str) -> Iterator[Stack]:
    """The whole stack (offline analyzer, fake Slack, fast ledger settings) on a fresh database."""
    with fresh_database(pg_server) as url:
        configure(url, **FAST_CONFIG)
        with Stack(database_url=url, base_port=None, sweep_interval=0.2, log_dir=log_dir,
                   extra_env={**stack_env(None, slack), **env}) as running:
            yield running


def stack_env(openai: FakeOpenAIServer | None, slack: FakeSlackServer) -> dict[str, str]:
    """Environment for the functions: the fakes (or the offline analyzer), never the real services."""
    env = {"OPENAI_API_KEY": "", "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_CHANNEL": "#feedback",
           "SLACK_BASE_URL": slack.api_base_url, "SLACK_WEBHOOK_URL": "", "SUPABASE_URL": ""}
    if openai is not None:
        env.update({"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": openai.base_url, "OPENAI_MAX_RETRIES": "0"})
    return env


def reset(stack: Stack) -> None:
    """Back to the module's baseline: fast ledger settings, every agent active at its
    own function with the default timeout, every function running, a fresh relay
    (its registry cache re-read)."""
    assert stack.database_url
    configure(stack.database_url, **FAST_CONFIG)
    with connect(stack.database_url) as conn:
        for fn in stack.functions.values():
            conn.execute("update public.agents set endpoint_url = %s, timeout_ms = %s, mode = 'live', "
                         "circuit_state = 'closed', consecutive_failures = 0 where name = %s",
                         (fn.url, DEFAULT_TIMEOUT_MS, fn.name))
    for fn in stack.functions.values():
        if fn.process is None or fn.process.poll() is not None:
            stack.start_function(fn.name, wait=True)
    restart_relay(stack)


def restart_relay(stack: Stack) -> None:
    stack.stop_relay()
    stack.start_relay()


def settle(stack: Stack, timeout: float = 30) -> dict[str, int]:
    """Wait until no delivery is open; fail the test if that takes longer than ``timeout``."""
    counts = stack.wait_settled(timeout=timeout)
    still_open = {s: n for s, n in counts.items() if s in ("pending", "running", "failed", "parked")}
    assert not still_open, f"deliveries still open after {timeout}s: {counts}"
    return counts


def quiesce(stack: Stack, timeout: float = 20) -> None:
    """Wait until no request is draining. A draining request takes new
    deliveries without any ring (and stays while it works a stream), so a
    test about rings must not start while one from the test before is alive."""
    assert stack.database_url
    url = stack.database_url

    def idle() -> bool:
        with connect(url) as conn:
            row = conn.execute("select count(*) as n from agent_drainers "
                               "where delivery_id is null and until > now()").fetchone()
        return row is not None and row["n"] == 0

    wait_for(idle, timeout, "draining requests to end")


def wait_for(check: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- feedback ---------------------------------------------------------------------


def project(url: str, **settings: Any) -> UUID:
    with connect(url) as conn:
        user = conn.execute("insert into auth.users (email) values (%s) returning id",
                            (f"e2e-{uuid.uuid4().hex[:8]}@example.com",)).fetchone()
        assert user is not None
        row = conn.execute("insert into public.projects (name, slug, owner_id, settings) values "
                           "('E2E', %s, %s, %s) returning id",
                           (f"e2e-{uuid.uuid4().hex[:8]}", user["id"], Jsonb({**PROJECT_SETTINGS, **settings}))
                           ).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def post(url: str, project_id: UUID, n: int = 1, start: int = 0) -> list[UUID]:
    """Insert ``n`` posts as a web app would; each becomes a feedback.created event."""
    ids = []
    with connect(url) as conn:
        for i in range(start, start + n):
            text = FEEDBACK[i % len(FEEDBACK)]
            row = conn.execute("insert into public.posts (project_id, title, body) values (%s, %s, %s) returning id",
                               (project_id, text[:60], f"{text} ({i}, {uuid.uuid4().hex[:6]})")).fetchone()
            assert row is not None
            ids.append(UUID(str(row["id"])))
    return ids


def deliveries_of(url: str, post_id: UUID, agent: str) -> dict[str, Any]:
    """The delivery of ``post_id``'s feedback.created event to ``agent``."""
    [row] = rows(url, "select d.* from public.event_deliveries d join public.events e on e.id = d.event_id "
                      "where e.type = 'feedback.created' and e.aggregate_id = %s and d.agent = %s",
                 (post_id, agent))
    return row


def statuses_since(url: str, since: Any) -> dict[str, int]:
    found = rows(url, "select status, count(*) as n from public.event_deliveries where event_created_at >= %s "
                      "group by status", (since,))
    return {r["status"]: int(r["n"]) for r in found}


def attempts_of(url: str, delivery_id: int) -> list[dict[str, Any]]:
    return rows(url, "select * from public.delivery_attempts where delivery_id = %s order by attempt",
                (delivery_id,))


# -- the verdicts -------------------------------------------------------------------


def assert_nothing_lost(url: str, project_id: UUID, since: Any) -> None:
    """Every delivery since ``since`` succeeded; every post has its sentiment and priority rows."""
    statuses = statuses_since(url, since)
    assert set(statuses) == {"succeeded"}, f"deliveries not all succeeded: {statuses}"
    lost = scalar(url, LOST_SQL, {"since": since, "project": project_id})
    assert lost == 0, f"{lost} deliveries or results lost"


def assert_no_duplicates(url: str, since: Any, slack: FakeSlackServer, slack_before: int, project_id: UUID) -> None:
    """No effect twice: no two events share (causation, producer, type); each sent
    notification reached Slack exactly once."""
    duplicated = scalar(url, DUPLICATED_SQL, {"since": since})
    assert duplicated == 0, f"{duplicated} duplicated follow-on events"
    sent = scalar(url, "select count(*) from public.notifications where project_id = %s and status = 'sent'",
                  (project_id,))
    # A message whose send succeeded but whose 'sent' could not be recorded
    # (the database went away right then) stays 'sending' or 'unknown': it was
    # posted once and is never posted again.
    maybe = scalar(url, "select count(*) from public.notifications where project_id = %s "
                        "and status in ('sending', 'unknown')", (project_id,))
    texts = [m.get("text") for m in slack.posted[slack_before:]]
    posted = len(texts)
    assert sent > 0
    assert sent <= posted <= sent + maybe, f"Slack got {posted} messages for {sent} sent (+{maybe} unknown)"
    rows = scalar(url, "select coalesce(jsonb_agg(text), '[]') from public.notifications where project_id = %s "
                       "and status in ('sent', 'sending', 'unknown')", (project_id,))
    extra = Counter(texts) - Counter(rows)
    assert not extra, f"messages reached Slack more often than they were recorded: {extra}"


@dataclass
class Baseline:
    """What a test starts from: its own project, the time, and Slack's message count."""

    url: str
    project_id: UUID
    since: Any
    slack: FakeSlackServer
    slack_before: int

    def assert_exactly_once(self) -> None:
        assert_nothing_lost(self.url, self.project_id, self.since)
        assert_no_duplicates(self.url, self.since, self.slack, self.slack_before, self.project_id)


def baseline(url: str, slack: FakeSlackServer) -> Baseline:
    return Baseline(url, project(url), now(url), slack, len(slack.posted))


# -- fakes ------------------------------------------------------------------------


@dataclass(frozen=True)
class SentimentAnswer:
    label: str = "positive"
    score: float = 0.5
    confidence: float = 0.9
    delay: float = 0.0


class AgentsOpenAI(FakeOpenAIServer):
    """Answers every structured-output request the agents make (sentiment batches,
    theme names, spec drafts) and embeddings; a test may script the next
    sentiment answers (e.g. a slow one) with :meth:`script_sentiment`."""

    def __init__(self) -> None:
        super().__init__()
        self._scripted: list[SentimentAnswer] = []
        self._script_lock = threading.Lock()
        self.default_sentiment = SentimentAnswer()

    def script_sentiment(self, *answers: SentimentAnswer) -> None:
        with self._script_lock:
            self._scripted.extend(answers)

    def sentiment_requests(self) -> list[RecordedRequest]:
        return [r for r in self.chat_requests if _schema(r) == "SentimentBatch"]

    def default_response(self, request: RecordedRequest) -> Canned:
        if request.path != CHAT_PATH:
            return super().default_response(request)
        schema = _schema(request)
        if schema == "SentimentBatch":
            return self._sentiment(request)
        if schema == "ThemeName":
            return Canned(200, chat_completion(json.dumps({"name": "Product feedback"})))
        if schema == "SpecAnswer":
            return Canned(200, chat_completion(json.dumps(_spec(request))))
        return super().default_response(request)

    def _sentiment(self, request: RecordedRequest) -> Canned:
        with self._script_lock:
            answer = self._scripted.pop(0) if self._scripted else self.default_sentiment
        results = [{"index": i, "label": answer.label, "score": answer.score, "confidence": answer.confidence}
                   for i in range(_input_count(request))]
        return Canned(200, chat_completion(json.dumps({"results": results})), delay=answer.delay)


def _schema(request: RecordedRequest) -> str | None:
    body = request.json or {}
    return ((body.get("response_format") or {}).get("json_schema") or {}).get("name")


def _user_text(request: RecordedRequest) -> str:
    messages = (request.json or {}).get("messages") or []
    return next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")


def _input_count(request: RecordedRequest) -> int:
    text = _user_text(request)
    _, _, listing = text.partition("\n")
    try:
        return len(json.loads(listing))
    except ValueError:
        return 1


def _spec(request: RecordedRequest) -> dict[str, Any]:
    ids = re.findall(r'"id": "([0-9a-f-]{36})"', _user_text(request))
    return {"title": "A spec", "problem": "Users ask for it.",
            "evidence": [{"feedback_id": i, "quote": "feedback"} for i in ids[:3]],
            "user_stories": ["As a user I want it"], "acceptance_criteria": ["It works"],
            "success_metrics": ["Fewer requests"], "open_questions": []}


class FailingProxy(FakeHTTPServer):
    """Answers 500 to its first ``failures`` requests without passing them on,
    then forwards every request to ``target`` (a function) and relays the answer."""

    def __init__(self, target: str, failures: int) -> None:
        super().__init__()
        self.target = target
        self.forwarded = 0
        for _ in range(failures):
            self.enqueue(Canned(500, {"error": "proxy: injected failure"}))

    def default_response(self, request: RecordedRequest) -> Canned:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        reply = httpx.post(self.target, content=request.body, headers=headers, timeout=30)
        self.forwarded += 1
        return Canned(reply.status_code, reply.content, {"Content-Type": reply.headers.get("content-type", "")})
