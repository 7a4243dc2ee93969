"""Packaging and deploying agent functions.

The built folder must serve on its own: a functions-framework server started in
it, with nothing from the repository importable ahead of it, answers 401 and
400 as the runtime promises. Its requirements are pinned and closed under
dependencies. ``deploy`` prints the gcloud commands on a dry run, and with a
fake ``gcloud`` on PATH records the URL it reports in ``agents.endpoint_url``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
import respx
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.errors import ConfigurationError
from signalsloop import ROOT
from signalsloop.release import deploy, package
from tests.signalsloop.release.conftest import BUILT, LEAKY_ENV, SECRET, isolated_env

PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[a-z0-9,_-]+\])?==[^\s=]+$")
PROBE = """
import json, sys
from functions_framework import create_app
create_app("handle", "main.py")
import shared, functions
print(json.dumps({"shared": shared.__file__, "functions": functions.__file__,
                  "modules": sorted({m.__file__ for m in list(sys.modules.values())
                                     if getattr(m, "__file__", None)})}))
"""


@pytest.mark.parametrize("agent", BUILT)
def test_packaged_function_imports_only_from_its_own_folder(built: dict[str, Path], agent: str) -> None:
    pkg = built[agent]
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=pkg, env=isolated_env(pkg), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(found["shared"]).is_relative_to(pkg)
    assert Path(found["functions"]).is_relative_to(pkg)
    venv = Path(sys.prefix).resolve()
    from_repo = [f for f in found["modules"]
                 if Path(f).resolve().is_relative_to(ROOT) and not Path(f).resolve().is_relative_to(venv)]
    assert from_repo == [], "the packaged function imported files from the repository"
    assert any(Path(f).is_relative_to(pkg / "functions" / agent) for f in found["modules"])


@pytest.mark.parametrize("agent", ["priority", "sentiment", "spec_quality"])
def test_packaged_function_serves_401_and_400(serve: Callable[..., str], agent: str) -> None:
    url = serve(agent)
    assert httpx.post(url, json={"type": "INSERT"}, timeout=10).status_code == 401
    wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    auth = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    malformed = httpx.post(url, content=b'{"type": "INSERT", "record": 42', headers=auth, timeout=10)
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "bad_request"
    not_an_event = httpx.post(url, json={"type": "INSERT", "table": "events", "record": {}}, headers=auth,
                              timeout=10)
    assert not_an_event.status_code == 400


def pins(pkg: Path) -> dict[str, tuple[str, set[str]]]:
    """requirements.txt as canonical name -> (version, extras); every line must be pinned."""
    found: dict[str, tuple[str, set[str]]] = {}
    for line in (pkg / "requirements.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        assert PIN.match(line), f"not pinned: {line!r}"
        req = Requirement(line)
        found[canonicalize_name(req.name)] = (str(req.specifier).removeprefix("=="), set(req.extras))
    return found


@pytest.mark.parametrize("agent", BUILT)
def test_requirements_are_pinned_and_closed(built: dict[str, Path], agent: str) -> None:
    pinned = pins(built[agent])
    for name in ("functions-framework", "flask", "pydantic", "psycopg", "psycopg-binary", "supabase"):
        assert name in pinned, name
    assert "binary" in pinned["psycopg"][1]  # the extra was honoured
    env = package.target_environment()
    for name, (version, extras) in pinned.items():  # every applicable dependency is pinned, compatibly
        dist = package.installed(name)
        assert dist is not None and dist.version == version
        for req in package.dependencies(dist, {"", *extras}, env, []):
            dep = canonicalize_name(req.name)
            assert dep in pinned, f"{name} needs {req} but it is not pinned"
            assert req.specifier.contains(pinned[dep][0], prereleases=True), f"{name} needs {req}"


def test_only_agents_that_need_them_get_the_heavy_dependencies(built: dict[str, Path]) -> None:
    assert "wordllama" not in pins(built["priority"])
    assert {"wordllama", "vadersentiment", "openai"} <= set(pins(built["sentiment"]))
    assert "openai" in pins(built["spec_quality"]) and "numpy" not in pins(built["spec_quality"])
    assert "slack-sdk" in pins(built["slack_actions"]) and "openai" not in pins(built["slack_actions"])


def test_folder_layout_and_deploy_notes(built: dict[str, Path]) -> None:
    pkg = built["priority"]
    assert (pkg / "main.py").read_bytes() == (ROOT / "functions" / "priority" / "main.py").read_bytes()
    assert (pkg / "functions" / "priority" / "agent.py").is_file()
    assert not (pkg / "functions" / "priority" / "requirements.txt").exists()
    assert (pkg / "shared" / "runtime.py").is_file()
    assert not list(pkg.rglob("__pycache__"))
    assert ".env" in (pkg / ".gcloudignore").read_text().splitlines()
    notes = (pkg / "DEPLOY.txt").read_text()
    assert "gcloud functions deploy signalsloop-priority" in notes and "--allow-unauthenticated" in notes


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_is_deterministic_and_wipes_stale_files(tmp_path: Path) -> None:
    first, _ = package.build("priority", tmp_path / "a")
    (first / "stale.py").write_text("x = 1\n")
    again, _ = package.build("priority", tmp_path / "a")
    other, _ = package.build("priority", tmp_path / "b")
    assert not (again / "stale.py").exists()
    assert tree(again) == tree(other)


def test_refuses_unknown_agents_and_building_over_the_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert package.main(["--out", "/tmp", "no_such_agent"]) == 2
    assert "unknown agent" in capsys.readouterr().err
    assert package.main(["--out", str(ROOT / "functions"), "priority"]) == 2  # would wipe functions/priority
    assert "overlaps the sources" in capsys.readouterr().err


# --- deploy -----------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No settings from the developer's environment or a .env file."""
    for name in LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_deploy_dry_run_prints_the_gcloud_commands(clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("SUPABASE_URL", "https://abc.supabase.co")
    out = tmp_path / "functions"
    assert deploy.main(["sentiment", "--dry-run", "--project", "p1", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "signalsloop.release.package" in lines[0]  # not built yet: the plan builds first
    command = next(line for line in lines if line.startswith("gcloud functions deploy"))
    for flag in ("signalsloop-sentiment", "--gen2", "--runtime=python311", "--trigger-http", "--entry-point=handle",
                 "--allow-unauthenticated", "--region=europe-west1", "--project=p1", f"--source={out / 'sentiment'}",
                 "--set-env-vars=SUPABASE_URL=https://abc.supabase.co",
                 "THREADED_TIMEOUT_ENABLED=True", "CLOUD_RUN_TIMEOUT_SECONDS=300",
                 "SIGNALSLOOP_SECRET=signalsloop-secret:latest", "OPENAI_API_KEY=openai-api-key:latest"):
        assert flag in command, flag
    assert any(line.startswith("gcloud functions describe signalsloop-sentiment") for line in lines)
    assert not out.exists()  # a dry run runs nothing


def test_deploy_dry_run_without_openai_for_agents_that_do_not_use_it(
        clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["spec_writer", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "signalsloop-spec-writer" in captured.out and "OPENAI_API_KEY" in captured.out
    assert "placeholder" in captured.err
    assert deploy.main(["priority", "--dry-run"]) == 0
    assert "OPENAI_API_KEY" not in capsys.readouterr().out


def test_deploy_errors_are_clear(clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["priority"]) == 2
    assert "SUPABASE_URL is not set" in capsys.readouterr().err
    clean_env.setenv("SUPABASE_URL", "https://abc.supabase.co")
    clean_env.setenv("SUPABASE_SERVICE_ROLE_KEY", "key")
    clean_env.setenv("PATH", str(tmp_path / "empty"))
    assert deploy.main(["priority"]) == 2
    assert "gcloud not found: install the Google Cloud CLI" in capsys.readouterr().err


FAKE_GCLOUD = """#!{python}
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["functions", "describe"]:
    print("https://signalsloop-priority-abc123-ew.a.run.app")
"""


@pytest.fixture
def fake_gcloud(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    bin_dir, log = tmp_path / "bin", tmp_path / "gcloud.log"
    bin_dir.mkdir()
    script = bin_dir / "gcloud"
    script.write_text(FAKE_GCLOUD.format(python=sys.executable, log=str(log)))
    script.chmod(0o755)
    clean_env.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_deploy_builds_deploys_and_records_the_url_with_psycopg(
        fake_gcloud: Path, clean_env: pytest.MonkeyPatch, db_url: str, tmp_path: Path) -> None:
    clean_env.setenv("SUPABASE_URL", "https://abc.supabase.co")
    clean_env.setenv("DATABASE_URL", db_url)
    out = tmp_path / "functions"
    assert deploy.main(["priority", "--out", str(out)]) == 0
    calls = [json.loads(line) for line in fake_gcloud.read_text().splitlines()]
    assert calls[0][:3] == ["functions", "deploy", "signalsloop-priority"]
    assert f"--source={out / 'priority'}" in calls[0]
    assert calls[1][:2] == ["functions", "describe"]
    assert (out / "priority" / "main.py").is_file()  # built because it was missing
    with psycopg.connect(db_url) as conn:
        row = conn.execute("select endpoint_url from public.agents where name = 'priority'").fetchone()
    assert row == ("https://signalsloop-priority-abc123-ew.a.run.app",)


def test_deploying_slack_actions_mounts_the_signing_secret_and_registers_nothing(
        fake_gcloud: Path, clean_env: pytest.MonkeyPatch, tmp_path: Path, built: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Slack calls it, not the doorbell: no agents row to record (no database needed), Slack's
    signing secret instead of the bearer secret, and the URL printed for the Slack app."""
    clean_env.setenv("SUPABASE_URL", "https://abc.supabase.co")
    assert deploy.main(["slack_actions", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "SLACK_SIGNING_SECRET=slack-signing-secret:latest" in plan and "SIGNALSLOOP_SECRET" not in plan
    assert "OPENAI_API_KEY" not in plan and "update public.agents" not in plan
    assert deploy.main(["slack_actions", "--out", str(tmp_path / "functions")]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "https://signalsloop-priority-abc123-ew.a.run.app"
    assert "Interactivity Request URL" in captured.err
    calls = [json.loads(line) for line in fake_gcloud.read_text().splitlines()]
    assert [c[:3] for c in calls] == [["functions", "deploy", "signalsloop-slack-actions"],
                                      ["functions", "describe", "signalsloop-slack-actions"]]
    notes = (built["slack_actions"] / "DEPLOY.txt").read_text()
    assert "Interactivity Request URL" in notes and "agents" not in notes


@respx.mock
def test_register_through_supabase_py(clean_env: pytest.MonkeyPatch) -> None:
    from shared.settings import Settings

    clean_env.setenv("SUPABASE_URL", "https://abc.supabase.co")
    clean_env.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-role-key")
    route = respx.patch("https://abc.supabase.co/rest/v1/agents").mock(
        return_value=httpx.Response(200, json=[{"name": "theme", "endpoint_url": "https://x.run.app"}]))
    deploy.register("theme", "https://x.run.app", Settings())
    request = route.calls.last.request
    assert request.url.params["name"] == "eq.theme"
    assert json.loads(request.content) == {"endpoint_url": "https://x.run.app"}
    assert request.headers["authorization"] == "Bearer service-role-key"

    route.mock(return_value=httpx.Response(200, json=[]))
    with pytest.raises(ConfigurationError, match=r"not in public\.agents"):
        deploy.register("theme", "https://x.run.app", Settings())
