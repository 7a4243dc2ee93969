"""The whole local stack, end to end: real PostgreSQL, the real relay, one
functions-framework server per agent (subprocesses), the offline analyzer and a
fake Slack. A post written through SQL flows through every agent once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signalsloop.local.stack import Stack
from tests.fakes.slack_server import FakeSlackServer
from tests.signalsloop import stack_helpers as h

SUBSCRIBED = {"sentiment", "duplicate", "notify"}  # the built agents subscribed to feedback.created


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(pg_server: str, slack: FakeSlackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with h.fresh_database(pg_server) as url:
        h.configure(url, **h.FAST_CONFIG)
        logs: Path = tmp_path_factory.mktemp("e2e-logs")
        with Stack(database_url=url, base_port=None, sweep_interval=0.2, log_dir=logs,
                   extra_env=h.stack_env(None, slack)) as running:
            yield running


@pytest.mark.timeout(120)
def test_a_post_flows_through_every_agent_once(stack: Stack, slack: FakeSlackServer) -> None:
    assert stack.database_url
    url = stack.database_url
    base = h.baseline(url, slack)

    [post_id] = h.post(url, base.project_id)
    h.settle(stack, timeout=60)

    [created] = h.rows(url, "select * from public.events where type = 'feedback.created' and aggregate_id = %s",
                       (post_id,))
    deliveries = h.rows(url, "select * from public.event_deliveries where event_id = %s", (created["id"],))
    assert {d["agent"] for d in deliveries} == SUBSCRIBED
    for delivery in deliveries:
        assert (delivery["agent"], delivery["status"], delivery["attempts"]) == (delivery["agent"], "succeeded", 1), \
            delivery["last_error"]
        [attempt] = h.attempts_of(url, delivery["id"])
        assert attempt["outcome"] == "succeeded"
        assert attempt["worker"].startswith(f"{delivery['agent']}@")  # claimed by that agent's own process

    chain = h.rows(url, "select type, metadata from public.events where metadata ->> 'correlation_id' = %s",
                   (str(created["id"]),))
    types = {e["type"] for e in chain}
    assert {"feedback.created", "sentiment.analyzed", "priority.calculated", "notification.sent"} <= types
    assert types & {"theme.detected", "theme.updated"}
    follow_ons = [e for e in chain if e["type"] != "feedback.created"]
    assert all(int(e["metadata"]["depth"]) >= 1 and e["metadata"]["causation_id"] for e in follow_ons)

    statuses = h.statuses_since(url, base.since)
    assert set(statuses) == {"succeeded"}
    assert h.scalar(url, "select count(*) from public.sentiment_analysis where feedback_id = %s", (post_id,)) == 1
    assert h.scalar(url, "select count(*) from public.priority_scores where feedback_id = %s", (post_id,)) == 1
    base.assert_exactly_once()



def test_functions_are_registered_under_the_advertised_host(pg_server: str) -> None:
    """``signalsloop dev --advertise-host host.docker.internal``: pg_net in a
    local Supabase container reaches the host's functions by that name."""
    with h.fresh_database(pg_server) as url:
        stack = Stack(database_url=url, advertise_host="host.docker.internal")
        try:
            stack.start()
            registered = {r["name"]: r["endpoint_url"]
                          for r in h.rows(url, "select name, endpoint_url from agents where endpoint_url is not null")}
        finally:
            stack.stop()
    # slack_actions is called by Slack, not by the doorbell: it has no registry entry.
    assert set(registered) == set(stack.functions) - {"slack_actions"}
    assert all(u == f"http://host.docker.internal:{stack.functions[n].port}/" for n, u in registered.items())
