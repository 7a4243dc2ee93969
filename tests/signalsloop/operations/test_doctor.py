"""``signalsloop doctor`` on a real database: each check failing on purpose,
with its message. Where Supabase's extensions are absent (the embedded
PostgreSQL), ``net``, ``cron`` and ``vault`` are stand-ins with the real
shapes (tests/fakes/supabase_schemas.py); endpoints are the real agent
runtime served on loopback, a fake HTTP server, or a closed port."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import flask
import httpx
import psycopg
import pytest
import respx
from pydantic import SecretStr
from werkzeug.serving import make_server

from shared.runtime import Runtime
from shared.settings import Settings, load_settings
from signalsloop.cli import main
from signalsloop.operations.doctor import check_extensions
from tests.fakes import Canned, FakeHTTPServer
from tests.fakes.supabase_schemas import install_cron, install_net, install_vault, record_response, record_run
from tests.helpers import Seed

SECRET = "the-right-secret"


class AgentServer:
    """The real agent runtime (which answers 401 / 400 before touching any
    store) over HTTP on a loopback port."""

    def __init__(self, secret: str) -> None:
        class Idle:
            name = "sentiment"

        runtime = Runtime(Idle(), deps_factory=lambda s: pytest.fail("no request should get past parsing"),  # type: ignore[arg-type]
                          settings=Settings(signalsloop_secret=SecretStr(secret), database_url="unused"))
        app = flask.Flask("doctor-test")
        app.add_url_rule("/", "agent", lambda: runtime(flask.request), methods=["POST"])
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> AgentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()


@pytest.fixture
def agent_server() -> Iterator[AgentServer]:
    with AgentServer(SECRET) as server:
        yield server


@pytest.fixture
def env(db_url: str, db: psycopg.Connection[Any], agent_server: AgentServer, no_proxy: None,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A healthy local database: every enabled agent at a runtime that takes SECRET."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SIGNALSLOOP_SECRET", SECRET)
    monkeypatch.setenv("COLUMNS", "250")
    load_settings.cache_clear()
    db.execute("update agents set endpoint_url = %s", (agent_server.url,))
    yield db_url
    load_settings.cache_clear()


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code = main(["doctor", "--json", "--timeout", "1", *args])
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is (code == 0)
    return code, {c["name"]: c for c in out["checks"]}


def failing(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {n: c["message"] for n, c in checks.items() if c["status"] == "fail"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_healthy_local_database_passes_and_says_what_does_not_apply(env: str, capsys: Any) -> None:
    code, checks = doctor(capsys)
    assert code == 0, failing(checks)
    assert checks["extension vector"]["status"] == "ok"
    assert checks["extension pg_net"]["status"] == "n/a"
    assert "the doorbell is NOTIFY" in checks["extension pg_net"]["message"]
    assert checks["vault secret"]["status"] == "n/a" and "Vault is absent (doorbell notify)" in \
        checks["vault secret"]["message"]
    assert checks["sweep job"]["status"] == "n/a" and "the relay must run" in checks["sweep job"]["message"]
    assert checks["endpoint sentiment"]["message"].endswith("accepts SIGNALSLOOP_SECRET (what the relay sends)")
    assert checks["deliveries"]["status"] == "ok" and checks["circuits"]["status"] == "ok"


def test_missing_vault_secret_and_wrong_endpoint_are_explained(env: str, db: psycopg.Connection[Any],
                                                               capsys: Any) -> None:
    install_net(db)
    install_vault(db)  # but no 'signalsloop_secret' in it
    with FakeHTTPServer() as nowhere:
        db.execute("update agents set endpoint_url = %s where name = 'theme'", (f"{nowhere.url}/wrong-path",))
        code = main(["doctor", "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1
    lines = {line.split(":", 1)[0]: line for line in out.splitlines()}
    assert "no Vault secret 'signalsloop_secret': pg_net rings without Authorization" in lines["FAIL vault secret"]
    assert "fix: select vault.create_secret(" in lines["FAIL vault secret"]
    assert "/wrong-path answers 404: no function there" in lines["FAIL endpoint theme"]
    assert "agents.endpoint_url of 'theme'" in lines["FAIL endpoint theme"]
    # pg_net sends the Vault secret, and there is none to test the others with
    assert "the Vault secret 'signalsloop_secret' is not set, so whether the function accepts it is untested" \
        in lines["n/a  endpoint sentiment"]


def test_a_function_with_another_secret_is_named(env: str, db: psycopg.Connection[Any], capsys: Any) -> None:
    install_net(db)
    install_vault(db, secret="what-vault-holds")
    code, checks = doctor(capsys)
    assert code == 1
    assert checks["vault secret"]["status"] == "ok"
    assert "rejects the Vault secret 'signalsloop_secret' (401)" in failing(checks)["endpoint notify"]


def test_unreachable_slow_open_and_missing_endpoints(env: str, db: psycopg.Connection[Any], capsys: Any) -> None:
    port = closed_port()
    with FakeHTTPServer() as slow, FakeHTTPServer() as open_:
        slow.enqueue(Canned(200, "late", delay=3))
        open_.enqueue(Canned(200, {"ok": True}))
        db.execute("update agents set endpoint_url = %s where name = 'sentiment'", (f"http://127.0.0.1:{port}/",))
        db.execute("update agents set endpoint_url = %s where name = 'duplicate'", (slow.url,))
        db.execute("update agents set endpoint_url = %s where name = 'notify'", (open_.url,))
        db.execute("update agents set endpoint_url = null where name = 'priority'")
        code, checks = doctor(capsys)
    bad = failing(checks)
    assert code == 1
    assert bad["endpoint sentiment"] == f"connection refused at http://127.0.0.1:{port}/ (nothing listens there)"
    assert bad["endpoint duplicate"] == f"no answer from {slow.url} within 1 s (timed out)"
    assert bad["endpoint notify"] == f"{open_.url} answers 200 without the secret (expected 401)"
    assert bad["endpoint priority"] == "no endpoint_url: its deliveries are never rung"
    assert checks["endpoint theme"]["status"] == "ok"


def test_the_sweep_job_missing_failing_and_running(env: str, db: psycopg.Connection[Any], capsys: Any) -> None:
    install_cron(db)
    _, checks = doctor(capsys)
    assert failing(checks)["sweep job"].startswith("no active pg_cron job 'signalsloop-sweep'")
    assert checks["sweep job"]["fix"] == "select public.schedule_sweep();"
    db.execute("select public.schedule_sweep()")
    _, checks = doctor(capsys)
    assert "is scheduled but has not run in the last 60 minutes" in failing(checks)["sweep job"]
    record_run(db, "succeeded", "1 row")
    record_run(db, "failed", "ERROR:  function public.run_periodic() does not exist")
    _, checks = doctor(capsys)
    assert failing(checks)["sweep job"] == ("1 of the last 2 runs of '5 seconds' select public.run_periodic() "
                                            "failed: ERROR:  function public.run_periodic() does not exist")
    db.execute("delete from cron.job_run_details where status = 'failed'")
    code, checks = doctor(capsys)
    assert code == 0 and checks["sweep job"]["status"] == "ok"


def test_pg_net_failures_are_grouped_by_kind(env: str, db: psycopg.Connection[Any], capsys: Any) -> None:
    install_net(db)
    install_vault(db, secret=SECRET)
    code, checks = doctor(capsys)
    assert code == 0, failing(checks)
    assert checks["pg_net responses"]["message"] == "0 responses in the last 60 minutes, no failures"
    for _ in range(3):
        record_response(db, status=401, content='{"error": "unauthorized"}')
    record_response(db, status=413, content="too large")
    record_response(db, status=200)
    record_response(db, error="Couldn't connect to server")
    record_response(db, error="Timeout was reached", timed_out=True)
    record_response(db, status=500, age_minutes=120)  # outside the window
    code, checks = doctor(capsys)
    message = failing(checks)["pg_net responses"]
    assert code == 1
    assert message.startswith("failures in the last 60 minutes: 401 x3, ")
    assert {"413 x1", "refused x1", "timed_out x1"} <= set(message.split(" (")[0].split(": ")[1].split(", "))
    assert "5xx" not in message
    assert "make it equal to their SIGNALSLOOP_SECRET" in checks["pg_net responses"]["fix"]


def test_stuck_and_dead_deliveries_and_open_circuits(env: str, db: psycopg.Connection[Any], seed: Seed,
                                                     capsys: Any) -> None:
    project = seed.project()
    seed.post(project)
    seed.post(project)
    code, checks = doctor(capsys)
    assert code == 0, failing(checks)
    first, second = (r["id"] for r in db.execute(
        "select id from event_deliveries where agent = 'sentiment' order by id"))
    db.execute("update event_deliveries set status = 'dead', last_error = 'HTTP 413 from doorbell' where id = %s",
               (first,))
    db.execute("update event_deliveries set ring_count = 7 where id = %s", (second,))
    db.execute("update event_deliveries set ring_after = now() - interval '10 minutes' where agent = 'duplicate'")
    db.execute("update agents set circuit_state = 'open', consecutive_failures = 5, circuit_opened_at = now() "
               "where name = 'notify'")
    code, checks = doctor(capsys)
    bad = failing(checks)
    assert code == 1
    assert bad["deliveries sentiment"] == "1 stuck (rung up to 7 times), 1 dead; last error: HTTP 413 from doorbell"
    assert checks["deliveries sentiment"]["fix"].endswith("signalsloop replay --dead --agent sentiment")
    assert bad["deliveries duplicate"].startswith("2 stuck")
    assert bad["circuits"].startswith("notify open after 5 failures since ")


def test_bad_arguments_and_a_database_without_the_migration(env: str, db: psycopg.Connection[Any],
                                                            capsys: Any) -> None:
    assert main(["doctor", "--timeout", "0"]) == 2
    assert "error: --timeout must be above 0 and at most 600 seconds" in capsys.readouterr().err
    assert main(["doctor", "--window", "0"]) == 2
    assert "error: --window must be between 1 and 525600 minutes" in capsys.readouterr().err
    db.execute("drop function public.doctor_report")
    assert main(["doctor"]) == 2
    assert "apply the migrations" in capsys.readouterr().err


def test_a_supabase_project_is_read_over_rpc_with_the_service_role_key(
        env: str, db: psycopg.Connection[Any], capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgREST (respx) answers with what the real doctor_report() returns, so
    both ways end in the same checks; endpoint probes still reach loopback."""
    install_net(db)
    install_vault(db, secret=SECRET)
    _, direct = doctor(capsys)
    row = db.execute("select public.doctor_report(p_window_minutes => 60, p_include_secret => true) as r").fetchone()
    facts = json.loads(json.dumps(row["r"], default=str))  # type: ignore[index]
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-role-key")
    load_settings.cache_clear()
    with respx.mock(assert_all_called=True) as api:
        api.route(host="127.0.0.1").pass_through()
        rpc = api.post("https://abc.supabase.co/rest/v1/rpc/doctor_report").mock(
            return_value=httpx.Response(200, json=facts))
        code, over_api = doctor(capsys, "--supabase-url", "https://abc.supabase.co")
    assert code == 0 and over_api == direct
    request = rpc.calls.last.request
    assert request.headers["authorization"] == "Bearer service-role-key"
    assert json.loads(request.content) == {"p_window_minutes": 60, "p_include_secret": True}


def test_supabase_without_the_service_role_key_is_a_clear_error(env: str, capsys: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY", raising=False)
    load_settings.cache_clear()
    assert main(["doctor", "--supabase-url", "https://abc.supabase.co"]) == 2
    assert capsys.readouterr().err.strip() == "error: checking a Supabase project needs SUPABASE_SERVICE_ROLE_KEY"


def test_preload_unreadable_still_points_at_shared_preload_libraries(db: psycopg.Connection[Any]) -> None:
    """Where the role may not read shared_preload_libraries (the report has
    null), an installed but uncreated pg_cron still gets the preload fix."""
    facts = db.execute("select public.doctor_report() as r").fetchone()["r"]  # type: ignore[index]
    facts["shared_preload_libraries"] = None
    facts["extensions"]["pg_cron"] = {"available": True, "default_version": "1.6", "installed": None}
    [cron] = [c for c in check_extensions(facts) if c.name == "extension pg_cron"]
    assert cron.status == "fail" and cron.message.startswith("pg_cron 1.6 is available but not created; ")
    assert cron.fix is not None and cron.fix.startswith("add pg_cron to shared_preload_libraries")
