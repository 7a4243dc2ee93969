"""The event envelope (the seed's ``DomainEvent``), the event-type catalogue,
version upcasting and the Supabase database-webhook payload.

Readers never see an old event version: :func:`upcast` turns a stored record
into the current shape in one place, before validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import UnsupportedVersion


class EventType:
    """The catalogue. Past-tense names; a producer publishes, subscribers react."""

    FEEDBACK_CREATED: Final = "feedback.created"
    FEEDBACK_UPDATED: Final = "feedback.updated"
    FEEDBACK_VOTED: Final = "feedback.voted"
    FEEDBACK_COMMENTED: Final = "feedback.commented"
    SENTIMENT_ANALYZED: Final = "sentiment.analyzed"
    THEME_DETECTED: Final = "theme.detected"
    THEME_UPDATED: Final = "theme.updated"
    THEME_THRESHOLD_REACHED: Final = "theme.threshold_reached"
    DUPLICATE_FOUND: Final = "duplicate.found"
    PRIORITY_CALCULATED: Final = "priority.calculated"
    SPEC_AUTO_DRAFTED: Final = "spec.auto_drafted"
    SPEC_APPROVED: Final = "spec.approved"
    SPEC_LINKED: Final = "spec.linked"
    SPEC_COMPLETED: Final = "spec.completed"
    SPEC_UPDATED: Final = "spec.updated"
    COMPETITOR_MENTIONED: Final = "competitor.mentioned"
    COMPETITOR_FEATURE_DETECTED: Final = "competitor.feature_detected"
    COMPETITIVE_THREAT_IDENTIFIED: Final = "competitive.threat_identified"
    USER_ENGAGED: Final = "user.engaged"
    USER_AT_RISK: Final = "user.at_risk"
    SPEC_QUALITY_CHECKED: Final = "spec.quality_checked"
    ROADMAP_UPDATED: Final = "roadmap.updated"
    ROADMAP_STALLED: Final = "roadmap.stalled"
    NOTIFICATION_SENT: Final = "notification.sent"
    AGENT_ROLLOUT_CHANGED: Final = "agent.rollout_changed"
    CLOCK_TICK: Final = "clock.tick"


ALL_EVENT_TYPES: Final[frozenset[str]] = frozenset(
    v for k, v in vars(EventType).items() if k.isupper() and isinstance(v, str)
)


class EventMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    project_id: UUID
    user_id: UUID | None = None
    timestamp: datetime | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    depth: int = Field(default=0, ge=0)
    producer: str | None = None


class DomainEvent(BaseModel):
    """One row of ``events``. ``created_at`` is None until the database stamps it."""

    model_config = ConfigDict(extra="forbid")

    id: UUID
    type: str = Field(pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
    aggregate_type: str = Field(min_length=1)
    aggregate_id: UUID
    payload: dict[str, Any] = Field(default_factory=dict)
    metadata: EventMetadata
    version: int = Field(default=1, ge=1)
    created_at: datetime | None = None

    @property
    def project_id(self) -> UUID:
        return self.metadata.project_id

    @property
    def correlation_id(self) -> UUID:
        return self.metadata.correlation_id or self.id

    @property
    def depth(self) -> int:
        return self.metadata.depth

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DomainEvent:
        """Validate a stored row (from a webhook or a query), upcasting old versions."""
        return cls.model_validate(upcast(dict(record)))

    def to_record(self) -> dict[str, Any]:
        """JSON-ready row for ``publish_events`` (no ``created_at``: the database sets it)."""
        record = self.model_dump(mode="json", exclude={"created_at", "metadata"})
        record["metadata"] = self.metadata.model_dump(mode="json", exclude_none=True)
        return record


# --- schema evolution ------------------------------------------------------

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# The current version of each event type (types not listed are at version 1).
CURRENT_VERSIONS: dict[str, int] = {EventType.SENTIMENT_ANALYZED: 2}


def _sentiment_v1_to_v2(record: dict[str, Any]) -> dict[str, Any]:
    """v1 carried ``sentiment`` as a bare label; v2 has label, score, confidence."""
    payload = dict(record.get("payload") or {})
    label = payload.pop("sentiment", payload.get("label", "neutral"))
    score = {"negative": -0.5, "neutral": 0.0, "positive": 0.5}.get(label, 0.0)
    payload.setdefault("label", label)
    payload.setdefault("score", score)
    payload.setdefault("confidence", 0.0)
    payload.setdefault("model", "unknown")
    return {**record, "payload": payload, "version": 2}


# (type, from_version) -> function producing from_version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    (EventType.SENTIMENT_ANALYZED, 1): _sentiment_v1_to_v2,
}


def upcast(
    record: dict[str, Any],
    upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
    current: Mapping[str, int] = CURRENT_VERSIONS,
) -> dict[str, Any]:
    """Bring ``record`` to the current version of its type, one step at a time."""
    kind = record.get("type")
    version = record.get("version") or 1
    if not isinstance(kind, str) or not isinstance(version, int):
        return record
    target = current.get(kind, 1)
    if version > target:
        raise UnsupportedVersion(f"{kind} v{version} is newer than this code knows (v{target}): "
                                 "deploy the agent that reads it, then replay")
    while version < target:
        step = upcasters.get((kind, version))
        if step is None:
            raise UnsupportedVersion(f"no upcaster for {kind} v{version} -> v{version + 1}")
        record = step(record)
        version = record["version"]
    return record


# --- the doorbell's body ---------------------------------------------------


class WebhookPayload(BaseModel):
    """The Supabase database-webhook body for the INSERT on ``events``. Strict:
    anything else is a misconfigured webhook and is refused with a 400."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["INSERT"]
    table: Literal["events"]
    schema_: Literal["public"] = Field(alias="schema")
    record: dict[str, Any]
    old_record: None = None

    @classmethod
    def for_event(cls, record: Mapping[str, Any]) -> dict[str, Any]:
        """The exact body pg_net and the relay send for ``record``."""
        return {"type": "INSERT", "table": "events", "schema": "public", "record": dict(record), "old_record": None}
