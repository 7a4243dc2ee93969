"""The history benchmark's probes: what they measure in two real databases,
and the ratios' intervals."""

from __future__ import annotations

import random

import psycopg

from signalsloop.benchmarks import history_probes
from signalsloop.benchmarks.history import load_history
from tests.conftest import cloned_database


def test_probe_measures_both_databases_and_leaves_nothing_behind(pg_server: str) -> None:
    with cloned_database(pg_server, "pe_") as empty, cloned_database(pg_server, "ph_") as history:
        with psycopg.connect(history, autocommit=True) as conn:
            load_history(conn, 2_000, chunk=1_000)
        result = history_probes.probe({"empty": empty, "history": history}, rounds=12, warmup=3)
        ratios = history_probes.compare(result)
        for url in (empty, history):
            with psycopg.connect(url) as conn:
                left = conn.execute("""
                    select (select count(*) from agents where name like 'probe%%'),
                           (select count(*) from events where type = 'probe.created'),
                           (select count(*) from event_deliveries
                             where status in ('pending', 'running', 'failed', 'parked'))""").fetchone()
            assert left == (0, 15, 0), "a probe event per round, nothing left open, the probe agents gone"
            with psycopg.connect(url) as conn:
                planned_for = conn.execute("select reltuples from pg_class where oid = 'public.events'::regclass")
                # analyzed again after the warm-up: the empty database is not planned as empty tables
                assert planned_for.fetchone() >= (3,)
    assert result["rounds"] == 12 and all(len(s) == 12 for s in result["samples"].values())
    for name in ("empty", "history"):
        for kind in history_probes.KINDS:
            ms = result["ms"][name][kind]
            assert 0 < ms["p50"] <= ms["p95"]
        during = result["during"][name]
        assert during["blks_hit"] > 0 and during["blks_read"] >= 0 and during["checkpoints"] >= 0
        # the test server's role is a superuser: the time inside the sweep and the claims is counted
        sweep_wall = sum(s[2] for s in result["samples"][name]) / 12
        assert 0 < during["sweep_server_ms_per_round"] <= sweep_wall  # inside the server, so within the wall time
        assert during["claim_server_ms_per_round"] > 0
    for r in ratios.values():
        assert r["p50_ci95"][0] <= r["p50"] <= r["p50_ci95"][1]
        assert r["p95_ci95"][0] <= r["p95"] <= r["p95_ci95"][1]


def test_a_constant_slowdown_has_no_spread() -> None:
    rng = random.Random(1)
    empty = [rng.uniform(0.5, 2.0) for _ in range(200)]
    r = history_probes.ratios(empty, [1.5 * e for e in empty])
    assert r["p50"] == r["per_round_p50"] == 1.5 and r["p50_ci95"] == [1.5, 1.5] and r["p95_ci95"] == [1.5, 1.5]


def test_noise_widens_the_interval_around_no_difference() -> None:
    rng = random.Random(2)
    empty = [rng.lognormvariate(0, 0.3) for _ in range(400)]
    same = [rng.lognormvariate(0, 0.3) for _ in range(400)]
    slower = [1.3 * rng.lognormvariate(0, 0.3) for _ in range(400)]
    alike = history_probes.ratios(empty, same)
    assert alike["p50_ci95"][0] < 1.0 < alike["p50_ci95"][1], "two draws of one distribution: 1.0 is inside"
    assert alike["p50_ci95"][1] - alike["p50_ci95"][0] > 0.02
    assert history_probes.ratios(empty, slower)["p50_ci95"][0] > 1.2, "a 30% slowdown is told from noise"
