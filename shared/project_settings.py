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
    slack_rate_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    notify_min_importance: Literal["low", "normal", "high", "urgent"] | None = None
    notify_digest_min_importance: Literal["low", "normal", "high", "urgent"] | None = None
    notify_digest_hours: int | None = Field(default=None, ge=1, le=168)
    # importance -> Slack channel, and owner user id -> Slack member id
    notify_channels: dict[Literal["low", "normal", "high", "urgent", "digest"], str] | None = None
    slack_users: dict[str, str] | None = None
    spec_quality_min: int | None = Field(default=None, ge=0, le=100)
    # competitive, engagement, roadmap (docs/agents.md)
    competitor_threat_threshold: int | None = Field(default=None, ge=1, le=100_000)
    competitor_threat_window_days: int | None = Field(default=None, ge=1, le=366)
    engagement_threshold: int | None = Field(default=None, ge=1, le=100_000)
    engagement_window_days: float | None = Field(default=None, gt=0, le=3660)
    engagement_at_risk_days: float | None = Field(default=None, gt=0, le=3660)
    roadmap_stall_days: float | None = Field(default=None, gt=0, le=3660)
    roadmap_target_days: float | None = Field(default=None, gt=0, le=3660)


# JSON has one number type: 1 is a fine threshold, 14 a fine number of days.
FLOATS = ("duplicate_threshold", "theme_similarity", "engagement_window_days", "engagement_at_risk_days",
          "roadmap_stall_days", "roadmap_target_days")


def check_project_settings(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """``raw`` as a dict, or :class:`InvalidSettings` naming each bad key."""
    data = dict(raw or {})
    nulls = [key for key in ProjectSettings.model_fields if key in data and data[key] is None]
    if nulls:  # agents read a present key as a value: int(None) would fail on every delivery
        raise InvalidSettings(f"project settings are invalid ({', '.join(nulls)}: null is not a value): "
                              "fix them, then replay")
    for key in FLOATS:
        if isinstance(data.get(key), int) and not isinstance(data.get(key), bool):
            data[key] = float(data[key])
    try:
        ProjectSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidSettings(f"project settings are invalid ({problems}): fix them, then replay") from None
    return data
