"""``signalsloop dashboard`` as a child process of the local stack (dev, demo
--keep, tests, benchmark): its own process, because NiceGUI's app is one per
process, and the sign-in URL read from the one line it prints."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shared.errors import ConfigurationError
from signalsloop import ROOT

PREFIX = "dashboard: "


@dataclass
class DashboardProcess:
    env: dict[str, str]
    args: Sequence[str] = ()
    log_path: Path | None = None
    process: subprocess.Popen[str] | None = None
    url: str = ""
    _lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def start(self, timeout: float = 90) -> str:
        """Start it and return the sign-in URL it printed."""
        binary = Path(sys.executable).with_name("signalsloop")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        err: IO[bytes] | int = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        # NiceGUI switches to its own test mode when it sees pytest's variable.
        env = {k: v for k, v in self.env.items() if k != "PYTEST_CURRENT_TEST"}
        self.process = subprocess.Popen([str(binary), "dashboard", *self.args], env=env, cwd=ROOT, text=True,
                                        stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            raise ConfigurationError(f"the dashboard did not start within {timeout:.0f}s") from None
        if not line.startswith(PREFIX):
            self.stop()
            raise ConfigurationError(f"the dashboard failed to start: {line.strip() or 'no output'}")
        self.url = line[len(PREFIX):].strip()
        return self.url

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put("")

    @property
    def base_url(self) -> str:
        return self.url.split("/login", 1)[0]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
