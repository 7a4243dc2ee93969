"""Headless Chromium for the dashboard tests and benchmark: Debian's
``chromium`` driven by Playwright (never a browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from signalsloop import ROOT

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
INSTALL_HINT = ("chromium not found: install Debian's package (`apt-get install -y chromium`, as .ci/run does) "
                "or set CHROMIUM to a Chromium binary")
ARTIFACTS = Path(os.environ.get("SIGNALSLOOP_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "dashboard"


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser (``playwright.sync_api.Browser``)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError(INSTALL_HINT)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
