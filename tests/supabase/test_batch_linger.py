"""Under a batching doorbell (pg_net) a quiet drain stays while another
drainer holds the batch open, and drains waiting for work leave when an agent
with no drainer starves (20261202000711_batch_linger.sql, shared/drain.py)."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.events import DomainEvent
from shared.postgres_store import PostgresStore
from signalsloop.local import pgnet_standin
from tests.helpers import Seed
from tests.shared.test_drain import RecordingAgent, body_for, publish
from tests.shared.test_runtime import auth, make_client


@pytest.fixture
def store(db_url: str) -> Any:
    s = PostgresStore(db_url, max_size=4)
    yield s
    s.close()


@pytest.fixture
def queued_rings(seed: Seed) -> Seed:
    """pg_net's SQL side (the stand-in's, with no worker): every ring stays
    queued with no answer, as rings do behind a batch that is held open."""
    pgnet_standin.install(seed.conn)
    seed.conn.execute("update agents set endpoint_url = 'http://127.0.0.1:9/' || name")
    return seed


def drainer_row(seed: Seed, drainer: UUID) -> Any:
    return seed.conn.execute("select * from agent_drainers where drainer = %s", (drainer,)).fetchone()


def hold(store: PostgresStore, drainer: UUID, agent: str, stays_ms: int) -> int:
    return store.drain_hold(drainer, agent, None, stays_ms=stays_ms, hold_ms=10_000)


def test_a_quiet_drain_stays_while_another_holds_the_batch(store: PostgresStore, seed: Seed) -> None:
    seed.configure(doorbell="pg_net", batch_starve_ms=0)
    quiet = uuid4()
    assert hold(store, quiet, "theme", 0) == 0, "no drainer stays: leave"
    assert drainer_row(seed, quiet) is None
    staying = uuid4()
    assert hold(store, staying, "sentiment", 3000) == 3000
    assert drainer_row(seed, staying)["stays_until"] is not None
    ms = hold(store, quiet, "theme", 0)
    assert 2500 < ms <= 3000, "stay until the staying drainer's end"
    row = drainer_row(seed, quiet)
    assert row is not None and row["stays_until"] is None, "registered as a drainer, not as one that stays"


def test_without_a_batching_doorbell_nothing_is_held(store: PostgresStore, seed: Seed) -> None:
    seed.configure(doorbell="notify", batch_starve_ms=0)
    staying = uuid4()
    assert hold(store, staying, "sentiment", 3000) == 3000, "a busy drain still stays to its budget"
    assert drainer_row(seed, staying) is None, "nothing recorded: no batch to hold"
    seed.conn.execute("insert into agent_drainers (drainer, agent, until, stays_until) "
                      "values (gen_random_uuid(), 'duplicate', now() + interval '1 minute', now() + interval '5 s')")
    assert hold(store, uuid4(), "theme", 0) == 0, "a quiet drain leaves after its linger, as before"


def test_drains_leave_when_an_undrained_agent_starves(store: PostgresStore, queued_rings: Seed) -> None:
    seed = queued_rings
    seed.configure(doorbell="pg_net", batch_starve_ms=200)
    project = seed.project()
    staying = uuid4()
    assert hold(store, staying, "sentiment", 3000) == 3000
    publish(store, project, "sentiment.analyzed", 1)  # pending for theme, priority, notify; nobody drains them
    assert hold(store, staying, "sentiment", 3000) == 3000, "not pending long enough yet"
    time.sleep(0.3)
    assert hold(store, staying, "sentiment", 3000) == 0, "theme's ring waits behind this batch: end it"
    assert hold(store, uuid4(), "duplicate", 0) == 0
    for agent in ("theme", "priority", "notify"):  # each now has a live drainer: nobody starves
        seed.conn.execute("insert into agent_drainers (drainer, agent, project_id, until) "
                          "values (gen_random_uuid(), %s, %s, now() + interval '1 minute')", (agent, project))
    assert hold(store, staying, "sentiment", 3000) == 3000


def test_a_quiet_request_takes_work_that_comes_while_the_batch_is_held(store: PostgresStore, seed: Seed) -> None:
    """pg_net: the quiet request stays with the batch and takes a post that
    comes long after its linger; the NOTIFY doorbell: it leaves after it."""
    seed.configure(doorbell="pg_net", batch_starve_ms=0, max_drainers=1)
    project = seed.project()
    assert hold(store, uuid4(), "duplicate", 2500) == 2500  # another agent's drain stays 2.5 s
    agent = RecordingAgent("sentiment")
    client = make_client(agent, store, drain_linger_ms=100)
    [first] = publish(store, project, "feedback.created", 1)
    late: list[DomainEvent] = []
    writer = threading.Timer(1.0, lambda: late.extend(publish(store, project, "feedback.created", 1)))
    writer.start()
    started = time.perf_counter()
    reply = client.post("/", json=body_for(seed, first), headers=auth())
    took = time.perf_counter() - started
    writer.join()
    assert reply.status_code == 200 and reply.json["drained"] == 1, reply.json
    assert agent.ran == [first.id, late[0].id]
    assert 2.0 <= took < 4.0, "it stayed until the batch's holder ended"
    assert seed.conn.execute("select count(*) as n from agent_drainers where delivery_id is null "
                             "and agent = 'sentiment'").fetchone()["n"] == 0, "and withdrew"

    seed.configure(doorbell="notify")
    [quiet] = publish(store, project, "feedback.created", 1)
    started = time.perf_counter()
    assert client.post("/", json=body_for(seed, quiet), headers=auth()).json["drained"] == 0
    assert time.perf_counter() - started < 1.5, "nothing batches: it left after the linger"


@pytest.mark.parametrize("starve_ms", [300, 0])
def test_a_staying_drain_ends_its_batch_when_another_agent_starves(store: PostgresStore, queued_rings: Seed,
                                                                   starve_ms: int) -> None:
    """Six runs make the drain stay to its 3 s budget; theme's delivery, with
    no drainer, starves after 300 ms, so the drain leaves well before (and
    with the rule off, batch_starve_ms = 0, it stays)."""
    seed = queued_rings
    seed.configure(doorbell="pg_net", batch_starve_ms=starve_ms, drain_budget_ms=3000, max_drainers=1)
    project = seed.project()
    posts = publish(store, project, "feedback.created", 6)
    publish(store, project, "sentiment.analyzed", 1)  # theme's, priority's and notify's: nobody drains them
    client = make_client(RecordingAgent("sentiment"), store, drain_linger_ms=100)
    started = time.perf_counter()
    reply = client.post("/", json=body_for(seed, posts[0]), headers=auth())
    took = time.perf_counter() - started
    assert reply.status_code == 200 and reply.json["drained"] == 5, reply.json
    if starve_ms:
        assert took < 2.0, "it left for the starving agent's sake"
    else:
        assert took >= 2.5, "it stayed to its budget"


def test_only_an_agent_whose_ring_waits_starves(store: PostgresStore, queued_rings: Seed) -> None:
    """An open circuit, or a pending delivery whose ring pg_net has answered
    (a 401, say), is not a ring held behind the batch: it must not cut every
    agent's batches short."""
    seed = queued_rings
    seed.configure(doorbell="pg_net", batch_starve_ms=100)
    project = seed.project()
    staying = uuid4()
    publish(store, project, "sentiment.analyzed", 1)  # theme, priority, notify: rung, nobody drains them
    time.sleep(0.2)
    assert hold(store, staying, "sentiment", 3000) == 0, "their rings wait behind the batch"
    seed.conn.execute("update agents set circuit_state = 'open', circuit_opened_at = now() "
                      "where name in ('theme', 'priority')")
    seed.conn.execute("insert into net._http_response (id, status_code, content) select last_request_id, 401, "
                      "'unauthorized' from event_deliveries where agent = 'notify' and last_request_id is not null")
    seed.conn.execute("select collect_ring_errors()")  # notify's ring was answered, with an error
    assert hold(store, staying, "sentiment", 3000) == 3000, "an open circuit and an arrived ring starve nobody"
