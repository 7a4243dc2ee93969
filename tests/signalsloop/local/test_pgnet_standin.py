"""The pg_net stand-in behaves as pg_net 0.20 does: one try per request, errors
and timeouts recorded in ``net._http_response`` and never retried, at most 200
requests a batch, about a second between batches while busy, and a wake at
commit (not before, not on rollback) when idle. The HTTP endpoints are local
fakes; the database is real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from signalsloop.local import pgnet_standin
from signalsloop.local.pgnet_standin import PgNetStandin
from signalsloop.local.stack import free_port
from tests.fakes import Canned, FakeHTTPServer, RecordedRequest

pytestmark = pytest.mark.timeout(60)


class TimedServer(FakeHTTPServer):
    """Answers 200 by default and notes when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def default_response(self, request: RecordedRequest) -> Canned:
        self.arrivals.append(time.monotonic())
        return Canned(200, {"ok": True})


@pytest.fixture
def net(db: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    pgnet_standin.install(db)
    return db


@pytest.fixture
def server() -> Iterator[TimedServer]:
    with TimedServer() as fake:
        yield fake


@pytest.fixture
def worker(net: psycopg.Connection[Any], db_url: str) -> Iterator[PgNetStandin]:
    with PgNetStandin(db_url) as running:
        yield running


def post(conn: psycopg.Connection[Any], url: str, body: str = "{}", timeout_ms: int = 5000) -> int:
    row = conn.execute("select net.http_post(%s, %s::jsonb, timeout_milliseconds := %s) as id",
                       (url, body, timeout_ms)).fetchone()
    return int(row["id"])


def responses(conn: psycopg.Connection[Any], n: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Wait until ``n`` responses are recorded; return them by request id."""
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute("select * from net._http_response order by id").fetchall()
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_the_objects_have_pg_nets_signatures(net: psycopg.Connection[Any]) -> None:
    assert net.execute("select to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') "
                       "is not null as ok").fetchone()["ok"]
    columns = net.execute("select attname from pg_attribute where attrelid = 'net._http_response'::regclass "
                          "and attnum > 0 order by attnum").fetchall()
    assert [c["attname"] for c in columns] == ["id", "status_code", "content_type", "headers", "content",
                                               "timed_out", "error_msg", "created"]
    with pytest.raises(psycopg.errors.RaiseException, match="Content-Type header must be"):
        net.execute("select net.http_post('http://x/', '{}', '{}', '{\"Content-Type\": \"text/plain\"}', 100)")


def test_each_request_is_sent_once_as_pg_net_sends_it(worker: PgNetStandin, net: psycopg.Connection[Any],
                                                      server: TimedServer) -> None:
    server.enqueue(Canned(503, {"error": "busy"}))  # an answer a retrying client would retry
    rid = post(net, server.url + "/fn", '{"title": "Dark mode 😀", "n": 1}')
    [reply] = responses(net, 1)
    time.sleep(1.5)  # a retry, if there were one, would come now
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.body == '{"n": 1, "title": "Dark mode 😀"}'.encode()  # jsonb's text form, UTF-8
    assert request.header("Content-Type") == "application/json"
    assert request.header("User-Agent") == f"pg_net/{pgnet_standin.PG_NET_VERSION}"
    assert (reply["id"], reply["status_code"], reply["timed_out"], reply["error_msg"]) == (rid, 503, False, None)
    assert reply["content"] == '{"error": "busy"}' and reply["content_type"] == "application/json"
    assert reply["headers"]["Content-Type"] == "application/json"
    assert net.execute("select count(*) as n from net.http_request_queue").fetchone()["n"] == 0


def test_a_refused_connection_and_a_timeout_are_recorded_and_not_retried(
        worker: PgNetStandin, net: psycopg.Connection[Any], server: TimedServer) -> None:
    server.enqueue(Canned(200, {}, delay=3), path="/slow")
    refused = post(net, f"http://127.0.0.1:{free_port()}/")
    slow = post(net, server.url + "/slow", timeout_ms=300)
    by_id = {r["id"]: r for r in responses(net, 2)}
    time.sleep(1.5)
    assert len(server.requests_to("/slow")) == 1
    assert net.execute("select count(*) as n from net._http_response").fetchone()["n"] == 2
    assert by_id[refused]["error_msg"] == "Couldn't connect to server"
    assert by_id[refused]["timed_out"] is False and by_id[refused]["status_code"] is None
    assert by_id[slow]["timed_out"] is True and by_id[slow]["status_code"] is None
    assert by_id[slow]["error_msg"].startswith("Timeout of 300 ms reached. Total time: ")


def test_batches_hold_at_most_200_and_busy_batches_are_a_second_apart(
        net: psycopg.Connection[Any], db_url: str, server: TimedServer) -> None:
    with net.transaction():  # queued before the worker starts: it finds them on its first look
        net.execute("select net.http_post(%s, '{}'::jsonb) from generate_series(1, 450)", (server.url + "/b",))
    with PgNetStandin(db_url) as worker:
        rows = responses(net, 450, timeout=40)
        time.sleep(0.2)
        batches = list(worker.batches)
    assert len(rows) == 450 and all(r["status_code"] == 200 for r in rows)
    assert [n for _, n in batches] == [200, 200, 50]
    # Each batch is one transaction: its responses share its start time, the send time.
    created = net.execute("select created, count(*) as n, min(id) as first from net._http_response "
                          "group by created order by created").fetchall()
    assert [c["n"] for c in created] == [200, 200, 50]
    assert [c["first"] for c in created] == [1, 201, 401]  # in queue order
    gaps = [(b["created"] - a["created"]).total_seconds() for a, b in pairwise(created)]
    assert all(gap >= 0.8 for gap in gaps), gaps
    assert all(b[0] - a[0] >= 0.8 for a, b in pairwise(batches))
    assert len(server.arrivals) == 450


def test_a_commit_under_load_does_not_cut_the_pause_short(worker: PgNetStandin, net: psycopg.Connection[Any],
                                                          server: TimedServer) -> None:
    """pg_net's first commit after a wake may end one pause early; after that, every
    busy batch waits its full second however many commits arrive."""
    time.sleep(1.5)  # past its first look at the queue: idle
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        post(net, server.url + "/steady")
        time.sleep(0.1)
    responses(net, len(server.requests) + 1)
    starts = [t for t, _ in worker.batches]
    gaps = [b - a for a, b in pairwise(starts)]
    assert len(starts) >= 4
    assert all(gap >= 0.8 for gap in gaps[1:]), gaps  # at most the first pause was cut short
    assert sum(n for _, n in worker.batches) == len(server.requests)


def test_an_idle_worker_wakes_at_commit_and_not_on_rollback(worker: PgNetStandin, db_url: str,
                                                            net: psycopg.Connection[Any],
                                                            server: TimedServer) -> None:
    time.sleep(1.5)  # past its first look at the queue: idle, waiting for a wake
    with psycopg.connect(db_url, row_factory=dict_row) as writer:
        post(writer, server.url + "/rolled-back")
        writer.rollback()
        post(writer, server.url + "/committed")
        time.sleep(1.5)
        assert server.requests == [], "nothing is sent before commit"
        writer.commit()
        committed_at = time.monotonic()
    [reply] = responses(net, 1)
    time.sleep(0.5)
    assert [r.path for r in server.requests] == ["/committed"] and reply["status_code"] == 200
    assert server.arrivals[0] >= committed_at
    print(f"idle wake to arrival: {(server.arrivals[0] - committed_at) * 1000:.1f} ms")


class SlowServer(TimedServer):
    def default_response(self, request: RecordedRequest) -> Canned:
        time.sleep(1.0)  # a function still draining: pg_net's batch stays open
        return super().default_response(request)


def test_the_bench_counts_a_batch_still_open_when_the_phase_ends(net: psycopg.Connection[Any], db_url: str) -> None:
    """A batch's responses commit at its end; the bench's ring count waits for
    every request of the phase (by id) instead of reading a batch too early."""
    from signalsloop.local import pgnet_doorbell

    with SlowServer() as slow, PgNetStandin(db_url):
        post(net, slow.url + "/before")
        responses(net, 1, timeout=10)
        after = pgnet_doorbell.last_request(net)
        with net.transaction():  # one commit: the three are queued together, so one batch takes them
            for _ in range(3):
                post(net, slow.url + "/phase")
        time.sleep(0.3)  # sent, not yet answered: nothing of this phase is visible
        assert net.execute("select count(*) as n from net._http_response where id > %s", (after,)).fetchone()["n"] == 0
        counted = pgnet_doorbell.rings(net, after)
    assert counted["requests"] == 3 and counted["batches"] == 1 and counted["outcomes"] == {"200": 3}
