"""Fixtures for the operator tooling's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.settings import load_settings


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI pointed at this test's database (settings are read once, so cleared)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")
    load_settings.cache_clear()
    yield db_url
    load_settings.cache_clear()
