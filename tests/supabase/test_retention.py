"""Retention as data (issue 10): prune_retention removes exactly what its rules
say, keeps what a replay still needs, never waits on rows the hot path holds,
and runs from run_periodic at its own cadence."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.helpers import Seed

FEEDBACK_AGENTS = 5  # sentiment, duplicate, notify, competitive, engagement subscribe to feedback.created


def event(db: psycopg.Connection, project: UUID, age_days: float, type_: str = "feedback.created") -> UUID:
    """An event published ``age_days`` ago (fan-out runs as for any insert)."""
    eid = uuid4()
    db.execute("insert into events (id, type, aggregate_type, aggregate_id, payload, metadata, created_at) "
               "values (%s, %s, 'feedback', %s, '{}', %s, now() - make_interval(secs => %s))",
               (eid, type_, uuid4(), json.dumps({"project_id": str(project)}), age_days * 86400))
    return eid


def finish(db: psycopg.Connection, event_id: UUID, status: str, age_days: float, agent: str | None = None) -> None:
    """Mark deliveries finished ``age_days`` ago, each with one attempt."""
    rows = db.execute("update event_deliveries set status = %s, attempts = 1, "
                      "finished_at = now() - make_interval(secs => %s) "
                      "where event_id = %s and (%s::text is null or agent = %s) returning id",
                      (status, age_days * 86400, event_id, agent, agent)).fetchall()
    for r in rows:
        db.execute("insert into delivery_attempts (delivery_id, attempt, claim_token, outcome, finished_at) "
                   "values (%s, 1, gen_random_uuid(), %s, now())", (r["id"], status))


def notification(db: psycopg.Connection, project: UUID, age_days: float, status: str = "sent") -> str:
    key = uuid4().hex
    db.execute("insert into notifications (dedupe_key, project_id, text, status, response, created_at) "
               "values (%s, %s, 'hello team', %s, '{\"ok\": true}', now() - make_interval(secs => %s))",
               (key, project, status, age_days * 86400))
    return key


def prune(db: psycopg.Connection, batch: int = 500) -> dict[str, Any]:
    result: dict[str, Any] = db.execute("select prune_retention(%s) as r", (batch,)).fetchone()["r"]
    return result


def exists(db: psycopg.Connection, table: str, id_: Any) -> bool:
    return db.execute(f"select count(*) as n from {table} where id = %s", (id_,)).fetchone()["n"] == 1


def test_pruning_removes_exactly_what_the_rules_say(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    ancient = event(db, project, 400)                  # all succeeded long ago: goes, with its deliveries
    finish(db, ancient, "succeeded", 399)
    ancient_dead = event(db, project, 400)             # a dead letter within 90 days keeps the event
    finish(db, ancient_dead, "succeeded", 399)
    finish(db, ancient_dead, "dead", 10, agent="notify")
    ancient_pending = event(db, project, 400)          # a paused agent's pending delivery keeps it too
    month_old = event(db, project, 40)                 # deliveries go, the event stays (365 days)
    finish(db, month_old, "succeeded", 40)
    recent = event(db, project, 5)                     # everything stays
    finish(db, recent, "succeeded", 5)
    old_dead = event(db, project, 100)                 # dead for 100 days: the dead letter goes
    finish(db, old_dead, "dead", 100)
    old_tick, new_tick = event(db, project, 8, "clock.tick"), event(db, project, 2, "clock.tick")
    finish(db, old_tick, "succeeded", 8)  # whoever subscribes to ticks has seen it: it goes with its deliveries
    tick_deliveries = len(seed.deliveries(event_id=old_tick))
    new_tick_pending = len(seed.deliveries(event_id=new_tick))
    sent_old, failed_old = notification(db, project, 40), notification(db, project, 40, "failed")
    queued_old = notification(db, project, 40, "queued")  # waits for the next digest: keeps its text
    notification(db, project, 400)  # past the event log's 365 days: deleted
    fresh = notification(db, project, 5)

    result = prune(db)

    assert {k: result[k] for k in ("succeeded_deliveries", "dead_deliveries", "events", "tick_events",
                                   "notifications_compacted", "notifications", "delivery_attempts",
                                   "deliveries_with_events")} == {
        "succeeded_deliveries": FEEDBACK_AGENTS * 2 + (FEEDBACK_AGENTS - 1),  # ancient, month_old, ancient_dead's
        "dead_deliveries": FEEDBACK_AGENTS,                                    # old_dead's
        "delivery_attempts": FEEDBACK_AGENTS * 4 - 1,
        "events": 1, "tick_events": 1, "deliveries_with_events": tick_deliveries,
        "notifications_compacted": 1, "notifications": 1}
    assert result["shadow_results"] == 0
    kept = {e: exists(db, "events", e) for e in (ancient, ancient_dead, ancient_pending, month_old, recent,
                                                    old_dead, old_tick, new_tick)}
    assert kept == {ancient: False, ancient_dead: True, ancient_pending: True, month_old: True, recent: True,
                    old_dead: True, old_tick: False, new_tick: True}
    left = {(r["event_id"], r["status"]): r["n"] for r in db.execute(
        "select event_id, status, count(*) as n from event_deliveries group by 1, 2")}
    assert left == {(ancient_dead, "dead"): 1, (ancient_pending, "pending"): FEEDBACK_AGENTS,
                    (recent, "succeeded"): FEEDBACK_AGENTS,
                    **({(new_tick, "pending"): new_tick_pending} if new_tick_pending else {})}
    notes = {r["dedupe_key"]: r for r in db.execute("select dedupe_key, text, response, status from notifications")}
    assert set(notes) == {sent_old, failed_old, queued_old, fresh}
    assert notes[queued_old]["text"] == "hello team"
    assert (notes[sent_old]["text"], notes[sent_old]["response"], notes[sent_old]["status"]) == ("", None, "sent")
    assert notes[failed_old]["text"] == "hello team", "a failed message may still be sent: never compacted"
    assert notes[fresh]["text"] == "hello team"
    run = db.execute("select removed, errors from prune_runs").fetchone()
    assert run["removed"]["events"] == 1 and run["errors"] is None

    again = prune(db)
    assert all(again[k] == 0 for k in ("succeeded_deliveries", "dead_deliveries", "events", "tick_events",
                                       "notifications_compacted", "notifications"))
    assert db.execute("select replay_dead() as n").fetchone()["n"] == 1, "the kept dead letter is replayable"


def test_a_compacted_notification_still_stops_a_second_send(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    key = notification(db, project, 40)
    prune(db)
    row = json.dumps({"dedupe_key": key, "project_id": str(project), "text": "hello team"})
    assert db.execute("select reserve_notification(%s) as ok", (row,)).fetchone()["ok"] is False


def test_an_expired_event_goes_with_its_succeeded_and_expired_dead_deliveries(db: psycopg.Connection,
                                                                                seed: Seed) -> None:
    """Shorter event retention than delivery retention: the event takes its
    finished deliveries (cascade) but never a dead letter still within retention."""
    project = seed.project()
    seed.configure(retain_events="1 day", retain_succeeded="30 days", retain_dead="90 days")
    done, dead = event(db, project, 3), event(db, project, 3)
    finish(db, done, "succeeded", 3)
    finish(db, dead, "succeeded", 3)
    finish(db, dead, "dead", 3, agent="notify")
    result = prune(db)
    assert (result["events"], result["deliveries_with_events"], result["succeeded_deliveries"]) == \
        (1, FEEDBACK_AGENTS, 0)
    assert not exists(db, "events", done) and exists(db, "events", dead)


def test_null_retention_keeps_a_kind_forever_and_batches_are_bounded(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    seed.configure(retain_succeeded=None, prune_batches=2)
    old = [event(db, project, 50) for _ in range(4)]
    for e in old:
        finish(db, e, "succeeded", 50)
    assert prune(db)["succeeded_deliveries"] is None
    seed.configure(retain_succeeded="30 days")
    first = prune(db, batch=5)
    assert first["succeeded_deliveries"] == 10, "two batches of five per run"
    assert prune(db, batch=5)["succeeded_deliveries"] == FEEDBACK_AGENTS * 4 - 10


def test_shadow_results_are_pruned_by_age_and_a_missing_table_is_skipped(db: psycopg.Connection,
                                                                          seed: Seed) -> None:
    project = seed.project()
    for age in (40, 40, 0):
        db.execute("insert into shadow_results (agent, project_id, aggregate_type, aggregate_id, event_id, "
                   "event_type, decision, created_at) values ('sentiment', %s, 'feedback', %s, %s, "
                   "'feedback.created', '{}', now() - make_interval(days => %s))",
                   (project, uuid4(), event(db, project, 1), age))
    assert prune(db)["shadow_results"] == 2
    assert db.execute("select count(*) as n from shadow_results").fetchone()["n"] == 1
    db.execute("drop table shadow_results cascade")
    assert prune(db)["shadow_results"] is None, "a schema without the table prunes the rest"


def test_run_periodic_prunes_once_per_interval(db: psycopg.Connection, seed: Seed) -> None:
    project = seed.project()
    finish(db, event(db, project, 50), "succeeded", 50)
    first = db.execute("select run_periodic() as r").fetchone()["r"]
    assert "rung" in first and first["pruned"]["succeeded_deliveries"] == FEEDBACK_AGENTS
    assert db.execute("select run_periodic() as r").fetchone()["r"]["pruned"] is None, "once a minute, not every call"
    db.execute("update prune_runs set started_at = started_at - interval '2 minutes'")
    assert db.execute("select run_periodic() as r").fetchone()["r"]["pruned"]["succeeded_deliveries"] == 0
    assert db.execute("select count(*) as n from prune_runs").fetchone()["n"] == 2
    seed.configure(prune_every=None)
    db.execute("update prune_runs set started_at = started_at - interval '2 minutes'")
    assert db.execute("select run_periodic() as r").fetchone()["r"]["pruned"] is None


def test_retention_rejects_a_negative_period(db: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute("update backbone_config set retain_events = '-1 day'")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("select prune_retention(0)")


def test_pruning_skips_rows_others_hold_and_never_blocks_claims(db_url: str, db: psycopg.Connection,
                                                                 seed: Seed) -> None:
    project = seed.project()
    old = [event(db, project, 50) for _ in range(3)]
    for e in old:
        finish(db, e, "succeeded", 50)
    live = event(db, project, 0)
    with psycopg.connect(db_url, row_factory=dict_row) as hot, psycopg.connect(db_url, row_factory=dict_row) as pruner:
        # The hot path holds one finished row (claim_delivery locks the row it
        # looks up, finished or not): pruning skips it instead of waiting.
        held = hot.execute("select id from event_deliveries where event_id = %s and agent = 'sentiment' for update",
                           (old[0],)).fetchone()["id"]
        pruner.execute("set lock_timeout = '1s'")
        started = time.perf_counter()
        result = pruner.execute("select prune_retention(500) as r").fetchone()["r"]
        assert time.perf_counter() - started < 1.0 and "errors" not in result
        assert result["succeeded_deliveries"] == FEEDBACK_AGENTS * 3 - 1
        hot.rollback()
        # Pruning's transaction is still open, holding what it deleted: claims,
        # completions and new events go on without waiting.
        hot.execute("set lock_timeout = '1s'")
        claim = hot.execute("select * from claim_delivery(%s, 'sentiment', 'w')", (live,)).fetchone()
        assert claim["outcome"] == "claimed"
        done = hot.execute("select complete_delivery(%s, %s) as r", (claim["delivery_id"], claim["claim_token"]))
        assert done.fetchone()["r"]["completed"] is True
        event(hot, project, 0)  # type: ignore[arg-type]
        hot.commit()
        pruner.commit()
    assert exists(db, "event_deliveries", held)
    assert db.execute("select count(*) as n from event_deliveries where status = 'succeeded'").fetchone()["n"] == 2
