"""``signalsloop dashboard``: clear errors for bad arguments, and exactly one
line on stdout (the sign-in URL) from the running server."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from signalsloop.cli import main
from signalsloop.local.dashboard_process import DashboardProcess
from signalsloop.local.stack import Stack
from tests.helpers import Seed


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
