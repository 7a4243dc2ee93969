"""A project's ``settings`` (jsonb in ``projects``), checked where agents read
them. The database rejects bad values when they are written; a bad value that
is there anyway fails only that project's delivery, permanently and with the
reason (never a retriable error that would count against a shared circuit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import InvalidSettings


class ProjectSettings(BaseModel):
    """The keys the agents read; other keys are kept as they are. Strict types:
    ``"abc"`` or ``"0.9"`` is not a number."""

    model_config = ConfigDict(extra="allow", strict=True)

    duplicate_threshold: float | None = Field(default=None, gt=0, le=1)
    theme_similarity: float | None = Field(default=None, gt=0, le=1)
    theme_threshold: int | None = Field(default=None, ge=1, le=100_000)
    slack_rate_per_minute: int | None = Field(default=None, ge=1)
    notify_min_importance: Literal["low", "normal", "high", "urgent"] | None = None
    notify_digest_min_importance: Literal["low", "normal", "high", "urgent"] | None = None
    notify_digest_hours: int | None = Field(default=None, ge=1, le=168)
    # importance -> Slack channel, and owner user id -> Slack member id
    notify_channels: dict[Literal["low", "normal", "high", "urgent", "digest"], str] | None = None
    slack_users: dict[str, str] | None = None
    spec_quality_min: int | None = Field(default=None, ge=0, le=100)


def check_project_settings(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """``raw`` as a dict, or :class:`InvalidSettings` naming each bad key."""
    data = dict(raw or {})
    for key in ("duplicate_threshold", "theme_similarity"):
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            data[key] = float(data[key])  # JSON has one number type: 1 is a fine threshold
    try:
        ProjectSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidSettings(f"project settings are invalid ({problems}): fix them, then replay") from None
    return data
