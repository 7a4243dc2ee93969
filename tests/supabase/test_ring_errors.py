"""Nothing waits silently: rings answered 401/404/413 or not at all are
recorded on their delivery and end dead after a bound; the queue behind moves.

pg_net is the outside world: a stand-in with pg_net's ``http_post``
signature and its ``net._http_response`` columns; the test writes the answers
pg_net would have recorded."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from shared.events import DomainEvent, EventMetadata
from shared.postgres_store import PostgresStore
from signalsloop.local.relay import Relay
from signalsloop.operations.agents import agent_health
from tests.helpers import Seed

PG_NET_SHAPE = """
create schema net;
create table net.http_request_queue (id bigserial primary key, method text, url text, headers jsonb,
                                     body bytea, timeout_milliseconds int);
create unlogged table net._http_response (id bigint, status_code integer, content_type text, headers jsonb,
                                          content text, timed_out boolean, error_msg text,
                                          created timestamptz not null default now());
create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
                              headers jsonb default '{"Content-Type": "application/json"}',
                              timeout_milliseconds int default 5000) returns bigint
language sql as $$
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', url, headers, convert_to(body::text, 'UTF8'), timeout_milliseconds) returning id
$$;
"""


@pytest.fixture
def pg_net(db: psycopg.Connection) -> psycopg.Connection:
    db.execute(PG_NET_SHAPE)
    db.execute("update agents set endpoint_url = 'https://fn.example/' || name")
    return db


def answer_all(db: psycopg.Connection, status: int | None, content: str = "", *, timed_out: bool = False,
               error: str | None = None) -> None:
    """What pg_net's worker records for every queued request, then empties the queue."""
    db.execute("insert into net._http_response (id, status_code, content, timed_out, error_msg) "
               "select id, %s, %s, %s, %s from net.http_request_queue", (status, content, timed_out, error))
    db.execute("delete from net.http_request_queue")


def sentiment(seed: Seed) -> dict[str, Any]:
    return seed.deliveries(agent="sentiment")[0]


def test_a_401_ring_is_recorded_and_dead_after_the_bound(pg_net: psycopg.Connection, seed: Seed) -> None:
    seed.configure(max_ring_errors=3)
    seed.post(seed.project())
    for ring in range(1, 4):
        answer_all(pg_net, 401, '{"error": "unauthorized", "message": "missing or wrong bearer token"}')
        assert pg_net.execute("select collect_ring_errors() as n").fetchone()["n"] == 3  # three agents rung
        row = sentiment(seed)
        assert row["ring_errors"] == ring and "HTTP 401" in row["last_error"]
        if ring < 3:
            assert row["status"] == "pending"
            pg_net.execute("select ring_doorbell(array(select id from event_deliveries))")
    assert sentiment(seed)["status"] == "dead"
    assert pg_net.execute("select replay_dead('sentiment') as n").fetchone()["n"] == 1


@pytest.mark.parametrize(("status", "timed_out", "error", "expected"), [
    (413, False, None, "HTTP 413"),
    (404, False, None, "HTTP 404"),
    (None, False, "Couldn't connect to server", "Couldn't connect"),
    (None, True, "Timeout of 5000 ms reached", "timed out"),
])
def test_refused_and_unanswered_rings_are_visible(pg_net: psycopg.Connection, seed: Seed, status: int | None,
                                                  timed_out: bool, error: str | None, expected: str) -> None:
    seed.post(seed.project())
    answer_all(pg_net, status, "", timed_out=timed_out, error=error)
    pg_net.execute("select run_periodic()")
    row = sentiment(seed)
    assert row["ring_errors"] == 1 and expected in row["last_ring_error"]
    health = {h["agent"]: h for h in agent_health(pg_net, None)}
    assert health["sentiment"]["ring_errors"] == 1 and expected in health["sentiment"]["last_ring_error"]


def test_an_answer_from_a_run_is_not_a_ring_error(pg_net: psycopg.Connection, seed: Seed) -> None:
    seed.post(seed.project())
    answer_all(pg_net, 503, '{"agent": "sentiment", "delivery_id": 1, "status": "failed"}')
    assert pg_net.execute("select collect_ring_errors() as n").fetchone()["n"] == 0
    assert sentiment(seed)["ring_errors"] == 0
    answer_all(pg_net, 200, '{"status": "busy"}')
    assert pg_net.execute("select collect_ring_errors() as n").fetchone()["n"] == 0


def test_a_delivery_stuck_on_its_ring_does_not_block_its_project(pg_net: psycopg.Connection, seed: Seed,
                                                                 db_url: str) -> None:
    """The first of a per-project agent's deliveries keeps getting 413 from a
    proxy; the drain of the next ring reads the ledger and runs both."""
    project = seed.project()
    store = PostgresStore(db_url)
    try:
        events = [DomainEvent(id=uuid4(), type="sentiment.analyzed", aggregate_type="feedback",
                              aggregate_id=uuid4(), metadata=EventMetadata(project_id=project)) for _ in range(2)]
        for event in events:
            store.publish([event])
        answer_all(pg_net, 413, "<html>Request Entity Too Large</html>")
        pg_net.execute("select collect_ring_errors()")
        first = store.claim(events[1].id, "theme", "w")  # the second one's ring gets through
        assert first.claimed
        store.complete(first, [], [])
        nxt = store.claim_next("theme", "w", project)
        assert nxt is not None and nxt.claimed and nxt.event and str(nxt.event["id"]) == str(events[0].id)
    finally:
        store.close()


class Refusing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"error": "unauthorized", "message": "missing or wrong bearer token"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_relay_records_what_it_was_refused(db_url: str, db: psycopg.Connection, seed: Seed) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        db.execute("update agents set endpoint_url = %s", (f"http://127.0.0.1:{server.server_port}/",))
        seed.post(seed.project())
        row = sentiment(seed)
        event = db.execute("select to_jsonb(e) as r from events e where id = %s", (row["event_id"],)).fetchone()
        agent = db.execute("select * from agents where name = 'sentiment'").fetchone()
        relay = Relay(db_url, "wrong-secret")
        relay._post(agent, event["r"], row["id"])
        relay._shutdown()
        row = sentiment(seed)
        assert row["ring_errors"] == 1 and "HTTP 401" in row["last_error"]
    finally:
        server.shutdown()
