"""Settings from the environment: a blank variable is the setting left out."""

from __future__ import annotations

import pytest

from shared.settings import Settings


def test_blank_variables_are_unset_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"SIGNALSLOOP_SECRET": "", "SLACK_SIGNING_SECRET": " ", "DATABASE_URL": "",
                        "OPENAI_MODEL": "", "MAX_BODY_BYTES": "  "}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.signalsloop_secret is None and settings.slack_signing_secret is None
    assert settings.database_url is None
    assert settings.openai_model == "gpt-4o-mini" and settings.max_body_bytes == 1024 * 1024


def test_set_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALSLOOP_SECRET", "s3cret")
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    settings = Settings(_env_file=None)
    assert settings.signalsloop_secret is not None and settings.signalsloop_secret.get_secret_value() == "s3cret"
    assert settings.max_body_bytes == 2048
