"""Vacuuming event_deliveries on top of a long history (issue 10): a vacuum
cleans the indexes, so the sweep's partial index loses the entries finished
deliveries left, however few of the table's rows changed
(20261202001101_delivery_vacuum.sql)."""

from __future__ import annotations

import json
import re
from uuid import uuid4

import psycopg

from signalsloop.benchmarks.history import load_history
from tests.conftest import cloned_database

SWEEP_SCAN = ("explain (analyze, buffers, format json) select d.id from event_deliveries d "
              "where d.status in ('pending', 'running', 'failed', 'parked') and d.ring_after <= now()")


def finish_deliveries(conn: psycopg.Connection, events: int) -> None:
    """``events`` events fanned out, every delivery claimed and completed: each
    leaves dead entries in the partial indexes of open deliveries."""
    conn.execute("insert into agents (name, event_types, description) "
                 "values ('vac_probe', array['vac.probed'], 'test')")
    project = conn.execute("insert into projects (name, slug) values ('Vac', %s) returning id",
                           (f"vac-{uuid4().hex[:8]}",)).fetchone()[0]  # type: ignore[index]
    meta = json.dumps({"project_id": str(project)})
    for _ in range(events):
        eid = uuid4()
        conn.execute("insert into events (id, type, aggregate_type, aggregate_id, metadata) "
                     "values (%s, 'vac.probed', 'vac', %s, %s)", (eid, uuid4(), meta))
        claims = conn.execute("select c.delivery_id, c.claim_token from event_deliveries d, "
                              "claim_delivery(d.event_id, d.agent, 'w') c where d.event_id = %s", (eid,)).fetchall()
        for claim in claims:
            conn.execute("select complete_delivery(%s, %s)", claim)


def vacuum_log(conn: psycopg.Connection) -> str:
    lines: list[str] = []
    conn.add_notice_handler(lambda d: lines.append(d.message_primary or ""))
    conn.execute("vacuum (verbose) event_deliveries")
    return "\n".join(lines)


def test_a_vacuum_after_few_changes_on_a_long_history_still_cleans_the_sweep_index(pg_server: str) -> None:
    with cloned_database(pg_server, "vac_") as url, psycopg.connect(url, autocommit=True) as conn:
        load_history(conn, 30_000, chunk=10_000)
        conn.execute("vacuum event_deliveries")
        clean = conn.execute(SWEEP_SCAN).fetchone()[0][0]["Plan"]  # type: ignore[index]
        finish_deliveries(conn, 60)
        open_ = conn.execute("select count(*) from event_deliveries "
                             "where status in ('pending', 'running', 'failed', 'parked')").fetchone()[0]  # type: ignore[index]
        log = vacuum_log(conn)
        after = conn.execute(SWEEP_SCAN).fetchone()[0][0]["Plan"]  # type: ignore[index]
    assert open_ == 0 and clean["Actual Rows"] == after["Actual Rows"] == 0
    # Fewer than 2% of the table's pages changed: PostgreSQL's default would
    # skip the indexes ("index scans: 0", "index scan bypassed").
    assert re.search(r"index scans: [1-9]", log) and "bypassed" not in log, log
    assert after["Shared Hit Blocks"] + after.get("Shared Read Blocks", 0) <= \
        clean["Shared Hit Blocks"] + clean.get("Shared Read Blocks", 0) + 1, (clean, after)


def test_autovacuum_comes_after_thousands_of_changes_not_a_fifth_of_the_table(db: psycopg.Connection) -> None:
    options = dict(o.split("=", 1) for o in db.execute(
        "select reloptions from pg_class where oid = 'public.event_deliveries'::regclass").fetchone()["reloptions"])
    trigger_at = float(options["autovacuum_vacuum_threshold"]) + \
        float(options["autovacuum_vacuum_scale_factor"]) * 2_500_000
    assert trigger_at <= 10_000, "on 2.5 million deliveries (1M events), not after 500,000 dead rows"
