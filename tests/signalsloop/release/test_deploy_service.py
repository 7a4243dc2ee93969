"""``make deploy AGENT=dashboard``: the ``gcloud run deploy`` command line it
runs (printed by a dry run, nothing executed). By default the service gets
the Supabase URL and keys only (members read under RLS with their own
token); DATABASE_URL is mounted only with the opt-in (``--direct``,
``DASHBOARD_DIRECT=1``)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from signalsloop import ROOT
from signalsloop.release import deploy
from signalsloop.release.deploy_service import service_text
from tests.signalsloop.release.conftest import LEAKY_ENV


@pytest.fixture
def supabase_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SUPABASE_URL only; nothing from the developer's environment or a .env file."""
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co")


def planned(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[list[str], dict[str, str]]:
    """The planned ``gcloud run deploy`` argv, and its --set-secrets as ENV -> secret."""
    assert deploy.main(["dashboard", "--dry-run", "--project", "p1", *args]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("gcloud run deploy signalsloop-dashboard"))
    argv = shlex.split(line)
    mounts = next(a for a in argv if a.startswith("--set-secrets=")).removeprefix("--set-secrets=")
    return argv, dict(pair.split("=", 1) for pair in mounts.split(","))


def test_the_default_deploy_mounts_the_supabase_keys_and_no_database_url(
        supabase_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    argv, secrets = planned([], capsys)
    assert secrets == {"SUPABASE_ANON_KEY": "supabase-anon-key:latest",
                       "SUPABASE_SERVICE_ROLE_KEY": "supabase-service-role-key:latest",
                       "DASHBOARD_SESSION_SECRET": "signalsloop-dashboard-session-secret:latest"}
    assert "--set-env-vars=SUPABASE_URL=https://abc.supabase.co" in argv
    assert not any("DATABASE_URL" in a for a in argv)
    for flag in ("--session-affinity", "--no-cpu-throttling", "--min-instances=1", "--project=p1"):
        assert flag in argv, flag


def test_direct_opts_in_to_the_database_url_secret(supabase_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    default_argv, default = planned([], capsys)
    argv, secrets = planned(["--direct"], capsys)
    assert secrets == {**default, "DATABASE_URL": "signalsloop-dashboard-database-url:latest"}
    assert [a for a in argv if not a.startswith("--set-secrets=")] == \
        [a for a in default_argv if not a.startswith("--set-secrets=")], "only the secrets differ"


def test_direct_is_refused_for_an_agent(supabase_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["priority", "--dry-run", "--direct"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --direct is for the dashboard only") and len(err.splitlines()) == 1


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(("extra", "direct"), [([], False), (["DASHBOARD_DIRECT=1"], True)])
def test_make_deploy_passes_the_opt_in(extra: list[str], direct: bool) -> None:
    done = subprocess.run(["make", "-n", "-s", "deploy", "AGENT=dashboard", *extra], cwd=ROOT, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "signalsloop.release.deploy" in line)
    assert ("--direct" in shlex.split(line)) is direct


def test_the_packaged_notes_deploy_without_database_url_and_say_how_to_opt_in() -> None:
    notes = service_text("dashboard")
    command = next(line for line in notes.splitlines() if line.startswith("gcloud run deploy"))
    assert "DATABASE_URL" not in command and "SUPABASE_ANON_KEY=supabase-anon-key:latest" in command
    assert "DASHBOARD_DIRECT=1" in notes and "signalsloop-dashboard-database-url" in notes
