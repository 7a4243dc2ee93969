"""Built function folders for the packaging tests: each agent under test built
once per session into a folder outside the repository, the environment Cloud
Run gives it, and a functions-framework server started inside one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from signalsloop import ROOT
from signalsloop.release import package

SECRET = "package-test-secret"
# Phase-2 agents, and the Phase-3 functions that ship without the offline
# analyzer (spec_quality) or are called by Slack rather than the ledger (slack_actions).
BUILT = ("priority", "sentiment", "spec_quality", "slack_actions")
# Every variable that could make the packaged function read something from here.
LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "DATABASE_URL", "SUPABASE_URL",
             "SUPABASE_SERVICE_ROLE_KEY", "OPENAI_API_KEY", "SIGNALSLOOP_SECRET")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The agents under test, built once into a folder outside the repository."""
    out = tmp_path_factory.mktemp("functions")
    assert not out.resolve().is_relative_to(ROOT)
    assert package.main(["--out", str(out), *BUILT]) == 0
    return {name: out / name for name in BUILT}


def isolated_env(pkg: Path) -> dict[str, str]:
    """What Cloud Run gives the function: its own folder first, the repository nowhere."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY_ENV}
    env.update({"PYTHONPATH": str(pkg), "PYTHONSAFEPATH": "1", "PYTHONNOUSERSITE": "1",
                "SIGNALSLOOP_SECRET": SECRET})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve(built: dict[str, Path]) -> Iterator[Callable[..., str]]:
    """Start functions-framework inside a built package; stop it afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(agent: str, env: dict[str, str] | None = None) -> str:
        pkg, port = built[agent], free_port()
        cmd = [sys.executable, "-m", "functions_framework", "--target", "handle", "--source", "main.py",
               "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=pkg, env=env or isolated_env(pkg), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        started.append(proc)
        url = f"http://127.0.0.1:{port}/"
        wait_serving(proc, url)
        return url

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_serving(proc: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"packaged function exited with {proc.returncode}:\n{output}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"packaged function did not serve within {timeout}s")
