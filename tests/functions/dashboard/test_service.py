"""The dashboard as Cloud Run runs it: the folder `make package` builds,
started with ``python main.py`` (its Procfile) and nothing from the
repository; people sign in with Supabase Auth (a fake GoTrue at its HTTP
boundary) and see only their projects."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from signalsloop.local.stack import free_port
from signalsloop.release import package
from tests.fakes.supabase_auth_server import FakeSupabaseAuth
from tests.fakes.supabase_rest import ANON_KEY, SERVICE_ROLE_KEY, FakeSupabase
from tests.helpers import Seed
from tests.signalsloop.release.test_package import isolated_env


@pytest.fixture
def auth(no_proxy: None) -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth() as fake:
        yield fake


@contextmanager
def packaged(tmp_path: Path, settings: dict[str, str]) -> Iterator[str]:
    """The packaged dashboard, started as Cloud Run starts it, with ``settings`` as its environment."""
    assert package.main(["--out", str(tmp_path), "dashboard"]) == 0
    pkg = tmp_path / "dashboard"
    assert (pkg / "Procfile").read_text() == "web: python main.py\n"
    port = free_port()
    env = {**isolated_env(pkg), "DASHBOARD_SESSION_SECRET": "s" * 32, "DASHBOARD_LIVE": "poll", "PORT": str(port),
           **settings}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.Popen([sys.executable, "main.py"], cwd=pkg, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                httpx.get(url + "/login", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the packaged dashboard did not serve"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def service(tmp_path: Path, db_url: str, auth: FakeSupabaseAuth) -> Iterator[str]:
    with packaged(tmp_path, {"DATABASE_URL": db_url, "SUPABASE_URL": auth.url, "SUPABASE_ANON_KEY": "anon",
                             "DASHBOARD_OPERATORS": "ops@example.com"}) as url:
        yield url


def sign_in(service: str, email: str, password: str) -> dict[str, str]:
    signed = httpx.post(service + "/login", data={"email": email, "password": password})
    assert signed.status_code == 303
    return {"signalsloop_dashboard": signed.cookies["signalsloop_dashboard"]}


def test_packaged_service_signs_in_with_supabase_auth_and_applies_rls(service: str, auth: FakeSupabaseAuth,
                                                                      seed: Seed) -> None:
    alice, bob = seed.user("alice@example.com"), seed.user("bob@example.com")
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    seed.post(mine, "Alice's")
    seed.post(theirs, "Bob's")
    auth.account("alice@example.com", "correct horse", alice)

    assert httpx.get(service + "/events").status_code == 401
    health = httpx.get(service + "/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "database": "ok"}, "no session needed"
    assert "Sign in with Supabase" in httpx.get(service + "/login").text
    wrong = httpx.post(service + "/login", data={"email": "alice@example.com", "password": "nope"})
    assert wrong.status_code == 401 and "signalsloop_dashboard" not in wrong.cookies

    signed = httpx.post(service + "/login", data={"email": "alice@example.com", "password": "correct horse"})
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie
    session = {"signalsloop_dashboard": signed.cookies["signalsloop_dashboard"]}
    events = httpx.get(service + "/api/events", cookies=session).json()
    assert {e["project_id"] for e in events} == {str(mine)}
    assert httpx.get(service + "/events", cookies=session).status_code == 200


def test_without_database_url_members_read_through_postgrest_with_their_own_token(
        tmp_path: Path, db_url: str, seed: Seed, no_proxy: None) -> None:
    """SUPABASE_URL and the keys only: pages are RPCs through PostgREST (a
    fake forwarding to the real database as the bearer token's user)."""
    alice, bob = seed.user("alice@example.com"), seed.user("bob@example.com")
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    seed.post(mine, "Alice's")
    seed.post(theirs, "Bob's")
    with FakeSupabase(db_url) as supabase:
        supabase.account("alice@example.com", "pw", alice)
        supabase.account("ops@example.com", "pw", seed.user("ops@example.com"))
        with packaged(tmp_path, {"SUPABASE_URL": supabase.url, "SUPABASE_ANON_KEY": ANON_KEY,
                                 "SUPABASE_SERVICE_ROLE_KEY": SERVICE_ROLE_KEY,
                                 "DASHBOARD_OPERATORS": "ops@example.com"}) as service:
            assert httpx.get(service + "/api/events").status_code == 401
            assert httpx.get(service + "/healthz").json() == {"status": "ok", "database": "ok"}
            session = sign_in(service, "alice@example.com", "pw")
            events = httpx.get(service + "/api/events", cookies=session).json()
            page = httpx.get(service + "/events", cookies=session)
            ops = httpx.get(service + "/api/events", cookies=sign_in(service, "ops@example.com", "pw")).json()
        calls = supabase.rest.calls
    assert {e["project_id"] for e in events} == {str(mine)} and len(events) == 1
    assert page.status_code == 200
    assert {e["project_id"] for e in ops} == {str(mine), str(theirs)}
    members = [c for c in calls if c["role"] == "authenticated"]
    assert members and {c["sub"] for c in members} == {str(alice)}
    assert all(c["bearer"] != SERVICE_ROLE_KEY for c in members)
    probes = [c for c in calls if c["function"] == "dashboard_since" and c["args"] == {"p_window_s": 60}]
    assert [c["role"] for c in probes] == ["service_role"], "/healthz: one round trip to the database"
    reads = [c for c in calls if c["role"] == "service_role" and c not in probes]
    assert [c["bearer"] for c in reads] == [SERVICE_ROLE_KEY], "the operator's read"


def test_healthz_reports_an_unreachable_database_and_the_service_keeps_serving(
        tmp_path: Path, auth: FakeSupabaseAuth) -> None:
    """Cloud Run or an uptime check can see the database is gone; the sign-in
    page still answers, and the answer names no host."""
    gone = f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1"
    with packaged(tmp_path, {"DATABASE_URL": gone, "SUPABASE_URL": auth.url, "SUPABASE_ANON_KEY": "anon"}) as url:
        health = httpx.get(url + "/healthz", timeout=30)
        assert health.status_code == 503, health.text
        assert health.json() == {"status": "unavailable", "database": "PoolTimeout"}
        assert "127.0.0.1" not in health.text
        assert httpx.get(url + "/login").status_code == 200


def test_the_service_settings_accept_supabase_only_and_need_the_service_key_for_operators(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.dashboard.service import config_from_env
    from shared.errors import ConfigurationError

    monkeypatch.chdir(Path(__file__).parent)  # no .env
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SUPABASE_SERVICE_ROLE_KEY", raising=False)
    for name, value in {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_ANON_KEY": "anon",
                        "DASHBOARD_SESSION_SECRET": "s" * 32, "DASHBOARD_OPERATORS": ""}.items():
        monkeypatch.setenv(name, value)
    config = config_from_env()
    assert config.database_url is None and config.supabase_anon_key == "anon"
    assert config.supabase_key is None, "no Realtime with the anon key: RLS would send it nothing"
    monkeypatch.setenv("DASHBOARD_OPERATORS", "ops@example.com")
    with pytest.raises(ConfigurationError, match="SUPABASE_SERVICE_ROLE_KEY"):
        config_from_env()
    monkeypatch.delenv("SUPABASE_URL")
    with pytest.raises(ConfigurationError, match="SUPABASE_URL"):
        config_from_env()
