"""The envelope, upcasting, the webhook model and deterministic ids."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError

from shared.errors import UnsupportedVersion
from shared.events import DomainEvent, EventMetadata, EventType, WebhookPayload, upcast
from shared.publish import event_id, follow_on


def root() -> DomainEvent:
    return DomainEvent(id=uuid4(), type=EventType.FEEDBACK_CREATED, aggregate_type="feedback",
                       aggregate_id=uuid4(), metadata=EventMetadata(project_id=uuid4()))


def test_old_sentiment_events_are_upcast_on_read() -> None:
    record = root().to_record() | {"type": "sentiment.analyzed", "version": 1, "payload": {"sentiment": "negative"}}
    event = DomainEvent.from_record(record)
    assert event.version == 2
    assert event.payload == {"label": "negative", "score": -0.5, "confidence": 0.0, "model": "unknown"}


def test_upcasting_walks_every_step_and_refuses_a_gap() -> None:
    steps = {("x.y", 1): lambda r: {**r, "version": 2, "a": 1}, ("x.y", 2): lambda r: {**r, "version": 3, "b": 2}}
    assert upcast({"type": "x.y", "version": 1}, steps, {"x.y": 3}) == {"type": "x.y", "version": 3, "a": 1, "b": 2}
    with pytest.raises(UnsupportedVersion, match=r"no upcaster for x\.y v1"):
        upcast({"type": "x.y", "version": 1}, {}, {"x.y": 2})


def test_follow_on_ids_are_deterministic_and_chain_metadata_is_filled() -> None:
    cause = root()
    a = follow_on(cause, agent="sentiment", event_type="sentiment.analyzed", aggregate_type="feedback",
                  aggregate_id=cause.aggregate_id, payload={})
    b = follow_on(cause, agent="sentiment", event_type="sentiment.analyzed", aggregate_type="feedback",
                  aggregate_id=cause.aggregate_id, payload={"other": True})
    assert a.id == b.id
    assert a.metadata.causation_id == cause.id and a.correlation_id == cause.id and a.depth == 1
    assert event_id(cause.id, "sentiment", "sentiment.analyzed", "k") != a.id
    assert event_id(None, "theme", "theme.threshold_reached", "t:20") == event_id(
        None, "theme", "theme.threshold_reached", "t:20")


def test_webhook_payload_is_strict_and_round_trips() -> None:
    body = WebhookPayload.for_event(root().to_record())
    assert WebhookPayload.model_validate(body).record == body["record"]
    with pytest.raises(ValidationError):
        WebhookPayload.model_validate({**body, "old_record": {"id": 1}})
