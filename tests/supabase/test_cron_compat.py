"""The migrations on the pg_cron and pg_net users have: pg_cron absent (the
embedded PostgreSQL 18), a 1.4 without second schedules and a 1.5+ with them
(stand-in ``cron`` schemas on the embedded server; the real Debian 1.4 where
postgresql-15-cron is installed), and extensions that are installed but not
preloaded, whose ``create extension`` fails: the migrations go on with the
NOTIFY doorbell and say why."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.postgres_store import PostgresStore
from signalsloop.db import migrate, migrations
from signalsloop.operations.doctor import check_extensions, check_sweep
from tests.conftest import url_for
from tests.fakes.supabase_schemas import install_cron
from tests.helpers import Seed
from tests.supabase.debian_pg import debian_cluster, extension_installed

ALL = [m.version for m in migrations()]


@pytest.fixture
def empty_url(pg_server: str) -> Iterator[str]:
    """A new, empty database on the embedded server (not the migrated template)."""
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("drop database if exists cron_compat with (force)")
        conn.execute("create database cron_compat")
    yield url_for(pg_server, "cron_compat")
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("drop database if exists cron_compat with (force)")


def sweep_jobs(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1]) for r in conn.execute(
            "select schedule, command from cron.job where jobname = 'signalsloop-sweep'")]


def report(url: str) -> dict[str, Any]:
    store = PostgresStore(url, max_size=1)
    try:
        return dict(store.rpc("doctor_report", {}))
    finally:
        store.close()


def test_without_pg_cron_nothing_is_scheduled_and_the_relay_sweeps(db: psycopg.Connection[Any]) -> None:
    assert db.execute("select to_regnamespace('cron') is null as absent").fetchone()["absent"]  # type: ignore[index]
    assert db.execute("select public.schedule_sweep() as s").fetchone()["s"] is None  # type: ignore[index]
    job = check_sweep(report_of(db))
    assert job.status == "n/a" and "the relay must run" in job.message


def report_of(db: psycopg.Connection[Any]) -> dict[str, Any]:
    return dict(db.execute("select public.doctor_report() as r").fetchone()["r"])  # type: ignore[index]


def test_pg_cron_with_second_schedules_sweeps_every_5_seconds(empty_url: str) -> None:
    with psycopg.connect(empty_url, autocommit=True) as conn:
        install_cron(conn, seconds=True)
    assert migrate(empty_url) == ALL
    assert sweep_jobs(empty_url) == [("5 seconds", "select public.run_periodic()")]


def test_pg_cron_14_gets_a_per_minute_job_that_sweeps_within_the_minute(empty_url: str) -> None:
    with psycopg.connect(empty_url, autocommit=True) as conn:
        install_cron(conn, seconds=False)
    assert migrate(empty_url) == ALL
    assert sweep_jobs(empty_url) == [("* * * * *", "call public.run_periodic_for(50, 5)")]
    assert migrate(empty_url) == []


def test_run_periodic_for_commits_each_round_so_its_doorbells_leave(db_url: str, db: psycopg.Connection[Any],
                                                                     seed: Seed) -> None:
    seed.post(seed.project())
    db.execute("update event_deliveries set ring_after = now() - interval '1 minute', ring_count = 0")
    rounds: list[float] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as conn:  # as pg_cron runs a job
                started = time.monotonic()
                conn.execute("call public.run_periodic_for(1.5, 0.5)")
                rounds.append(time.monotonic() - started)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    seen_while_running = False
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as watcher:
        while time.monotonic() < deadline and not seen_while_running:
            rung = watcher.execute("select count(*) as n from event_deliveries where ring_count > 0").fetchone()
            seen_while_running = rung is not None and rung["n"] > 0 and worker.is_alive()
            time.sleep(0.05)
    worker.join(10)
    assert not errors
    assert seen_while_running, "the first round's rings were committed while the call still ran"
    assert 1.0 <= rounds[0] < 3.0
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_every must be > 0"):
        db.execute("call public.run_periodic_for(1, 0)")


@pytest.fixture(scope="module")
def cron_url(pg_server: str) -> Iterator[str]:
    if not extension_installed("pg_cron"):
        pytest.skip("Debian's postgresql-15-cron is not installed")
    with debian_cluster(55434, shared_preload_libraries="pg_cron", **{"cron.database_name": "postgres"}) as url:
        yield url


def test_debian_pg_cron_14_takes_the_per_minute_job(cron_url: str) -> None:
    assert migrate(cron_url) == ALL
    assert sweep_jobs(cron_url) == [("* * * * *", "call public.run_periodic_for(50, 5)")]
    with psycopg.connect(cron_url, autocommit=True) as conn:
        version = conn.execute("select extversion from pg_extension where extname = 'pg_cron'").fetchone()[0]  # type: ignore[index]
        assert version.startswith("1.4")
        conn.execute("call public.run_periodic_for(0.2, 0.1)")  # the job's command runs on the real server
    facts = report(cron_url)
    assert facts["extensions"]["pg_cron"]["installed"] == version
    assert facts["cron"]["jobs"][0]["schedule"] == "* * * * *"


@pytest.fixture(scope="module")
def unloaded_url(pg_server: str) -> Iterator[str]:
    if not extension_installed("pg_cron"):
        pytest.skip("Debian's postgresql-15-cron is not installed")
    with debian_cluster(55435) as url:  # pg_cron (and pg_net, where built) installed, nothing preloaded
        yield url


def test_installed_but_not_preloaded_extensions_are_skipped_with_a_warning(
        unloaded_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="signalsloop.db"):
        assert migrate(unloaded_url) == ALL
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [cron_warning] = [w for w in warnings if "pg_cron is installed but could not be created" in w]
    assert "run the relay (signalsloop relay)" in cron_warning and "shared_preload_libraries" in cron_warning
    if extension_installed("pg_net"):
        [net_warning] = [w for w in warnings if "pg_net is installed but could not be created" in w]
        assert "the doorbell is NOTIFY" in net_warning
    facts = report(unloaded_url)
    assert facts["doorbell"]["effective"] == "notify" and not facts["cron"]["present"]
    cron = next(c for c in check_extensions(facts) if c.name == "extension pg_cron")
    assert cron.status == "fail" and "not in shared_preload_libraries" in cron.message
    assert cron.fix is not None and "select public.schedule_sweep()" in cron.fix
