"""The level-off's simulated months: moving the timestamps back makes the
default retention prune what it would prune that much later."""

from __future__ import annotations

import json

import psycopg

from signalsloop.benchmarks import history_probes
from signalsloop.benchmarks.history import age_ledger, prune_all


def age(conn: psycopg.Connection, interval: str) -> None:
    """As a level-off month ends: older, then pruned with the default retention."""
    age_ledger(conn, interval)
    while prune_all(conn):
        pass


def kept(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute("select (select count(*) from public.events where type = 'probe.created'), "
                       "(select count(*) from public.event_deliveries where agent like 'probe%%')").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_month_later_the_deliveries_go_and_a_year_later_the_events(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("insert into public.agents (name, event_types, endpoint_url, description) "
                     "select unnest(%s::text[]), array['probe.created'], null, 'probe' "
                     "on conflict (name) do nothing", (list(history_probes.PROBE_AGENTS),))
        meta = json.dumps({"project_id": str(history_probes.project(conn, "Aged"))})
        for _ in range(3):
            history_probes.probe_once(conn, meta)  # an event, its four deliveries succeeded
        assert kept(conn) == (3, 12)
        age(conn, "29 days")
        assert kept(conn) == (3, 12), "inside every retention: nothing pruned"
        age(conn, "2 days")
        assert kept(conn) == (3, 0), "31 days on: the succeeded deliveries go, the events stay"
        age(conn, "333 days")
        assert kept(conn) == (3, 0), "364 days: the events are still inside retain_events"
        age(conn, "2 days")
        assert kept(conn) == (0, 0)
