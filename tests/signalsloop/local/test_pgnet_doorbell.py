"""The local stack with the production doorbell: pg_net rings (here the
stand-in, as the test database has no pg_net extension), run_periodic()
stands in for pg_cron, no relay. Feedback flows exactly once, every ring is
in net._http_response, and the stand-in leaves nothing behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shared.errors import ConfigurationError
from signalsloop.local.pgnet_doorbell import PgNetDoorbell
from signalsloop.local.stack import Stack
from tests.fakes.slack_server import FakeSlackServer
from tests.signalsloop import stack_helpers as h


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


def wait_until_every_ring_is_answered(url: str, timeout: float = 30) -> None:
    """Until every delivery's ring has its answer and no more answers come.
    A wake rings no delivery of its own, so its answer ('woken') stands for no
    ring: counting it as one would stop the wait while a drain's last ring is
    still in pg_net's batch."""
    deadline, seen = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        [counts] = h.rows(url, "select (select count(*) from net._http_response) as answers, "
                               "(select count(*) from net._http_response "
                               " where content::jsonb ->> 'status' = 'woken') as woken, "
                               "(select sum(ring_count) from public.event_deliveries) as rings")
        ring_answers = counts["answers"] - counts["woken"]
        if ring_answers >= counts["rings"] and counts["answers"] == seen:
            return
        seen = counts["answers"]
        time.sleep(1.0 if ring_answers >= counts["rings"] else 0.2)


@pytest.mark.timeout(180)
def test_posts_flow_once_rung_by_pg_net(pg_server: str, slack: FakeSlackServer, tmp_path: Path) -> None:
    with h.fresh_database(pg_server) as url:
        h.configure(url, **h.FAST_CONFIG)
        with Stack(database_url=url, doorbell="pg_net", log_dir=tmp_path, extra_env=h.stack_env(None, slack)) as stack:
            assert stack.relay is None and (stack.doorbell_name, stack.sweep_name) == ("pg_net-standin", "timer-5s")
            assert h.scalar(url, "select public.agent_secret()") == stack.secret  # what the functions accept
            base = h.baseline(url, slack)
            h.post(url, base.project_id, n=3)
            h.settle(stack, timeout=90)
            base.assert_exactly_once()
            wait_until_every_ring_is_answered(url)  # a drain's last ring may still be in pg_net's batch
            rung = h.scalar(url, "select sum(ring_count) from public.event_deliveries")
            statuses = h.rows(url, "select status_code, count(*) as n, "
                                   "count(*) filter (where content::jsonb ->> 'status' = 'woken') as woken "
                                   "from net._http_response group by 1")
            assert {r["status_code"] for r in statuses} == {200}  # every ring answered, with the Vault secret
            # a wake rings no delivery of its own
            assert sum(r["n"] for r in statuses) == rung + sum(r["woken"] for r in statuses)
            assert not h.scalar(url, "select count(*) from pg_stat_activity "
                                     "where query ilike 'listen signalsloop_doorbell%'")  # no relay
        assert h.scalar(url, "select to_regnamespace('net') is null and to_regnamespace('vault') is null")


def test_a_doorbell_pg_net_would_never_ring_is_refused(db_url: str, db: psycopg.Connection) -> None:
    db.execute("update backbone_config set doorbell = 'notify'")
    with pytest.raises(ConfigurationError, match="doorbell is 'notify'"):
        PgNetDoorbell(db_url, "s").prepare()


def test_a_vault_without_the_secret_is_explained(db_url: str, db: psycopg.Connection) -> None:
    db.execute("create schema vault; create view vault.decrypted_secrets as "
               "select 'other'::text as name, 'x'::text as decrypted_secret")
    doorbell = PgNetDoorbell(db_url, "s")
    with pytest.raises(ConfigurationError, match="Vault has no secret named 'signalsloop_secret'"):
        doorbell.prepare()
    doorbell.stop()  # removes the stand-in it installed, not the Vault it found
    assert db.execute("select to_regnamespace('net') is null as gone, "
                      "to_regnamespace('vault') is not null as kept").fetchone() == {"gone": True, "kept": True}
