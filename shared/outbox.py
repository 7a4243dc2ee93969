"""Messages with effects outside (Slack): recorded under a dedupe key before
they are sent, so a retry never sends one twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.agent import Deps, MessageOutcome
from shared.errors import OutcomeUnknown
from shared.events import DomainEvent


def deliver_messages(messages: Sequence[Any], deps: Deps, event: DomainEvent) -> list[MessageOutcome]:
    """Record each message before sending it; a key already handled is never sent again."""
    outcomes = []
    for message in messages:
        row = {**message.model_dump(mode="json"), "dedupe_key": message.key, "event_id": str(event.id),
               "event_type": event.type}
        if not deps.store.rpc("reserve_notification", {"p_row": row}):
            outcomes.append(_already_handled(deps, message))
            continue
        notifier = deps.notifier_for(message.project_id)
        if notifier is None:
            _finish(deps, message.key, "unconfigured", "none")
            outcomes.append(MessageOutcome(message, "unconfigured"))
            continue
        try:
            receipt = notifier.send(message)
        except OutcomeUnknown as exc:
            # It may have been posted: never send it again, and carry on.
            _finish(deps, message.key, "unknown", "slack", error=str(exc))
            outcomes.append(MessageOutcome(message, "unknown", transport="slack"))
            continue
        except Exception as exc:
            _finish(deps, message.key, "failed", "slack", error=str(exc))
            raise
        _finish(deps, message.key, "sent", receipt.transport, response=receipt.model_dump(mode="json"))
        outcomes.append(MessageOutcome(message, "sent", receipt.channel, receipt.transport))
    return outcomes


def _finish(deps: Deps, key: str, status: str, transport: str, *, response: dict[str, Any] | None = None,
            error: str | None = None) -> None:
    deps.store.rpc("finish_notification", {"p_dedupe_key": key, "p_status": status, "p_transport": transport,
                                           "p_response": response, "p_error": error})


def _already_handled(deps: Deps, message: Any) -> MessageOutcome:
    """What an earlier attempt did with this key. One left 'sending' crashed
    mid-send: it may have been posted, so it counts as unknown."""
    rows = deps.store.select("notifications", eq={"dedupe_key": message.key},
                             columns=["status", "channel", "transport"])
    status = rows[0]["status"] if rows else "unknown"
    status = "unknown" if status == "sending" else status
    return MessageOutcome(message, status, rows[0]["channel"] if rows else None,
                          rows[0]["transport"] if rows else None)
