"""Scale without partitioning (issue 10): on top of a long history the hot
path (fan-out, claim, complete, sweep) and pruning plan index scans only, the
sweep through a partial index that holds only unfinished deliveries.

Plans are the real ones of the SQL functions' inner statements, captured
with auto_explain (log_nested_statements), not copies of their queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

import psycopg
import pytest

from signalsloop.benchmarks.history import load_history
from tests.conftest import cloned_database

BIG_TABLES = ("events", "event_deliveries", "delivery_attempts")
INDEX_USE = re.compile(r"(?:Index(?: Only)? Scan(?: Backward)? using|Bitmap Index Scan on) (\w+)")


@contextmanager
def captured_plans(conn: psycopg.Connection, analyze: bool = False) -> Iterator[list[str]]:
    plans: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        if diag.message_primary and "plan:" in diag.message_primary:
            plans.append(diag.message_primary)

    conn.add_notice_handler(keep)
    conn.execute("load 'auto_explain'")
    conn.execute("set auto_explain.log_min_duration = 0")
    conn.execute("set auto_explain.log_nested_statements = on")
    conn.execute(f"set auto_explain.log_analyze = {'on' if analyze else 'off'}")
    conn.execute("set client_min_messages = log")
    try:
        yield plans
    finally:
        conn.execute("set client_min_messages = notice")
        conn.remove_notice_handler(keep)


def seq_scans(plans: list[str]) -> list[str]:
    return [p for p in plans for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", p)]


def partial_indexes(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("select indexname from pg_indexes where schemaname = 'public' "
                                       "and indexdef like '%% WHERE %%'")}


@pytest.fixture(scope="module")
def history_url(pg_server: str) -> Iterator[str]:
    """One database with 30,000 historical events (about 60,000 deliveries),
    shared by this module's tests, which only roll back."""
    with cloned_database(pg_server, "h_") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            load_history(conn, 30_000, chunk=10_000)
        yield url


def test_history_loads_events_with_succeeded_deliveries_and_attempts(history_url: str) -> None:
    with psycopg.connect(history_url) as conn:
        events, deliveries, attempts, unfinished = conn.execute("""
            select (select count(*) from events), (select count(*) from event_deliveries),
                   (select count(*) from delivery_attempts where outcome = 'succeeded'),
                   (select count(*) from event_deliveries where status <> 'succeeded')""").fetchone()  # type: ignore[misc]
    assert events == 30_000 and deliveries > events and attempts == deliveries and unfinished == 0


def test_the_hot_path_and_pruning_never_scan_the_history(history_url: str) -> None:
    with psycopg.connect(history_url) as conn:
        project = conn.execute("select id from projects where name = 'History'").fetchone()[0]  # type: ignore[index]
        with captured_plans(conn) as plans:
            eid = uuid4()
            conn.execute("insert into events (id, type, aggregate_type, aggregate_id, metadata) "
                         "values (%s, 'feedback.created', 'feedback', %s, %s)",
                         (eid, uuid4(), json.dumps({"project_id": str(project)})))
            fan_out = len(plans)
            claim = conn.execute("select delivery_id, claim_token from claim_delivery(%s, 'sentiment', 'w')",
                                 (eid,)).fetchone()
            assert claim is not None and claim[1] is not None
            conn.execute("select complete_delivery(%s, %s)", claim)
            before_sweep = len(plans)
            conn.execute("select sweep_deliveries(500)")
            sweep = plans[before_sweep:]
            conn.execute("select prune_retention(100)")
        conn.rollback()
        assert fan_out > 0 and sweep, "auto_explain captured the functions' inner statements"
        assert seq_scans(plans) == []
        used = {m for p in sweep for m in INDEX_USE.findall(p)}
        assert used & partial_indexes(conn), f"the sweep reads a partial index of unfinished deliveries: {used}"


def test_claiming_an_old_event_is_an_index_lookup(history_url: str) -> None:
    with psycopg.connect(history_url) as conn:
        old: UUID = conn.execute("select event_id from event_deliveries where agent = 'sentiment' "
                                 "order by id limit 1").fetchone()[0]  # type: ignore[index]
        with captured_plans(conn) as plans:
            outcome = conn.execute("select outcome from claim_delivery(%s, 'sentiment', 'w')", (old,)).fetchone()
        conn.rollback()
    assert outcome == ("finished",) and seq_scans(plans) == [] and plans


def test_pruning_plans_use_indexes_even_as_generic_plans(history_url: str) -> None:
    """A long-lived session (the relay's) may run pruning on cached generic
    plans: those must not scan the history either."""
    with psycopg.connect(history_url) as conn:
        conn.execute("update backbone_config set retain_succeeded = '10 days', retain_events = '20 days', "
                     "prune_budget_ms = 600000")
        conn.execute("set plan_cache_mode = force_generic_plan")
        with captured_plans(conn) as plans:
            removed = conn.execute("select prune_retention(50)").fetchone()[0]  # type: ignore[index]
        conn.rollback()
    assert removed["succeeded_deliveries"] == removed["events"] == 200, "four batches of 50 each"
    assert removed["deliveries_with_events"] > 0, "events past 20 days go with their succeeded deliveries"
    assert plans and seq_scans(plans) == []
    used = {m for p in plans for m in INDEX_USE.findall(p)}
    assert "event_deliveries_finished_idx" in used and "events_tick_created_idx" in used, used


def _open_deliveries(conn: psycopg.Connection, project: UUID, events: int) -> list[UUID]:
    ids = [uuid4() for _ in range(events)]
    for eid in ids:
        conn.execute("insert into events (id, type, aggregate_type, aggregate_id, metadata) "
                     "values (%s, 'feedback.created', 'feedback', %s, %s)",
                     (eid, uuid4(), json.dumps({"project_id": str(project)})))
    return ids


def test_claims_read_their_agents_open_deliveries_whatever_the_statistics_say(history_url: str) -> None:
    """A vacuum while nothing is open leaves the partial indexes with
    reltuples = 0, and the planner then costs a full scan of any of them at
    one page: claim_next's skip scan read the sweep's index (every agent's
    open deliveries, and every dead entry until the next vacuum, which on a
    table of millions of rows comes rarely) instead of its agent's. The sweep's
    index now needs a ring_after condition the claims do not have."""
    with psycopg.connect(history_url, autocommit=True) as conn:
        conn.execute("vacuum (analyze) event_deliveries")
    with psycopg.connect(history_url) as conn:
        project = conn.execute("select id from projects where name = 'History'").fetchone()[0]  # type: ignore[index]
        _open_deliveries(conn, project, 20)
        conn.execute("set plan_cache_mode = force_generic_plan")  # the drain's long-lived sessions
        with captured_plans(conn) as plans:
            claimed = [conn.execute("select delivery_id from claim_next('sentiment', 'w', null)").fetchone()
                       for _ in range(3)]
            conn.execute("select ring_next('competitive', null)")
            before_sweep = len(plans)
            conn.execute("select sweep_deliveries(500)")
            sweep = plans[before_sweep:]
        conn.rollback()
    assert all(c and c[0] for c in claimed), claimed
    claims = {m for p in plans[:before_sweep] for m in INDEX_USE.findall(p)}
    assert "event_deliveries_due_idx" not in claims and "event_deliveries_due_by_project_idx" in claims, claims
    assert "event_deliveries_due_idx" in {m for p in sweep for m in INDEX_USE.findall(p)}
    assert seq_scans(plans) == []


ROWS_LOOPS = re.compile(r"rows=([\d.]+) loops=(\d+)")


def test_agent_health_reads_the_windows_attempts_once(history_url: str) -> None:
    """The failure rate of every (agent, project) pair comes from one pass
    over the window's attempts, not one pass per pair (quadratic in the load),
    and the result is each pair's last alert_sample_size attempts."""
    with psycopg.connect(history_url) as conn:
        conn.execute("update backbone_config set alert_window_seconds = 21600, alert_sample_size = 20")
        in_window, pairs = conn.execute("""
            select count(*), count(distinct (d.agent, d.project_id)) from delivery_attempts a
              join event_deliveries d on d.id = a.delivery_id
             where a.started_at >= now() - interval '6 hours'""").fetchone()  # type: ignore[misc]
        with captured_plans(conn, analyze=True) as plans:
            health = conn.execute("select agent, details from agent_health_now()").fetchall()
        conn.rollback()
    assert pairs > 3 and in_window > 20 * pairs, (pairs, in_window)
    assert len(health) == pairs and all(d["attempts"] == 20 and d["failures"] == 0 for _, d in health), health
    [plan] = [p for p in plans if "delivery_attempts" in p and "Function Scan" not in p]
    read = sum(float(r) * int(n) for line in plan.splitlines()
               if re.search(r"on delivery_attempts\b", line)
               for r, n in ROWS_LOOPS.findall(line))
    assert 0 < read <= in_window, f"read {read} attempts for {in_window} in the window"
    # (Joining them to 75,000 deliveries the planner may hash; on 2.5 million,
    # measured, it looks each up by primary key.)
    assert "Seq Scan on delivery_attempts" not in plan


def test_collecting_ring_errors_finds_the_waiting_rings_by_index(history_url: str) -> None:
    """With pg_net, every run_periodic matches pg_net's answers to the rings
    waiting for one (last_request_id): an index of those few rows."""
    with psycopg.connect(history_url) as conn:
        conn.execute("create schema if not exists net")
        conn.execute("create table net._http_response (id bigint primary key, status_code integer, content text, "
                     "timed_out boolean, error_msg text)")
        conn.execute("update event_deliveries set last_request_id = id where id in "
                     "(select id from event_deliveries order by id desc limit 3)")
        conn.execute("insert into net._http_response (id, status_code, content) "
                     "select id, 200, '{\"delivery_id\": 1}' from event_deliveries where last_request_id is not null")
        conn.execute("analyze event_deliveries")
        with captured_plans(conn) as plans:
            conn.execute("select collect_ring_errors()")
        left = conn.execute("select count(*) from event_deliveries where last_request_id is not null").fetchone()
        conn.rollback()
    assert left == (0,), "answered rings are collected"
    assert seq_scans(plans) == []
    assert "event_deliveries_request_idx" in {m for p in plans for m in INDEX_USE.findall(p)}


REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")


def test_the_starvation_check_reads_the_rings_not_the_history(history_url: str) -> None:
    """drain_hold() asks batch_starves() twice a second per waiting drain
    under pg_net: it must read the rings waiting for pg_net's answer (an index
    of those few rows), not walk every agent's deliveries in id order. That walk is the plan
    an agent's oldest pending delivery got from statistics taken while much
    was pending (an autovacuum analyze during a burst): 20-36 ms after one
    benchmark run, growing with the history."""
    with psycopg.connect(history_url) as conn:
        project = conn.execute("select id from projects where name = 'History'").fetchone()[0]  # type: ignore[index]
        conn.execute("update event_deliveries set status = 'pending' where id % 10 = 0")
        conn.execute("analyze event_deliveries")  # statistics from a busy moment
        conn.execute("update event_deliveries set status = 'succeeded' where status = 'pending'")
        conn.commit()  # the statistics stay; the rows are as they were
        _open_deliveries(conn, project, 2)
        rings = conn.execute("update event_deliveries set last_request_id = id where status = 'pending' "
                             "and created_at = now()").rowcount  # rung, no answer yet
        with captured_plans(conn, analyze=True) as plans:
            starves = conn.execute("select batch_starves(0)").fetchone()[0]  # type: ignore[index]
        conn.rollback()
    assert rings > 0 and starves is True, "a ring with nobody draining its agent starves"
    [plan] = [p for p in plans if "event_deliveries" in p]
    read = sum(float(r) * int(n) for line in plan.splitlines() if "event_deliveries" in line
               for r, n in ROWS_LOOPS.findall(line)) + sum(int(n) for n in REMOVED.findall(plan))
    assert read <= 10 * rings, f"read {read} rows for {rings} rings:\n{plan}"
    assert seq_scans(plans) == []
