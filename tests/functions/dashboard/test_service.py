"""The dashboard as Cloud Run runs it: the folder `make package` builds,
started with ``python main.py`` (its Procfile) and nothing from the
repository; people sign in with Supabase Auth (a fake GoTrue at its HTTP
boundary) and see only their projects."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from signalsloop.local.stack import free_port
from signalsloop.release import package
from tests.fakes.supabase_auth_server import FakeSupabaseAuth
from tests.helpers import Seed
from tests.signalsloop.release.test_package import isolated_env


@pytest.fixture
def auth(no_proxy: None) -> Iterator[FakeSupabaseAuth]:
    with FakeSupabaseAuth() as fake:
        yield fake


@pytest.fixture
def service(tmp_path: Path, db_url: str, auth: FakeSupabaseAuth) -> Iterator[str]:
    assert package.main(["--out", str(tmp_path), "dashboard"]) == 0
    pkg = tmp_path / "dashboard"
    assert (pkg / "Procfile").read_text() == "web: python main.py\n"
    port = free_port()
    env = {**isolated_env(pkg), "DATABASE_URL": db_url, "SUPABASE_URL": auth.url, "SUPABASE_ANON_KEY": "anon",
           "DASHBOARD_SESSION_SECRET": "s" * 32, "DASHBOARD_LIVE": "poll", "PORT": str(port),
           "DASHBOARD_OPERATORS": "ops@example.com"}
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


def test_packaged_service_signs_in_with_supabase_auth_and_applies_rls(service: str, auth: FakeSupabaseAuth,
                                                                      seed: Seed) -> None:
    alice, bob = seed.user("alice@example.com"), seed.user("bob@example.com")
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    seed.post(mine, "Alice's")
    seed.post(theirs, "Bob's")
    auth.account("alice@example.com", "correct horse", alice)

    assert httpx.get(service + "/events").status_code == 401
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
