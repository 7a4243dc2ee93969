"""What an agent is: a name, a ``load`` step that reads (database, AI) and a
pure ``decide`` step that turns (event, what was read) into a :class:`Decision`.

Like the eventsourcing library's process policies: ``decide`` does no I/O, so
it is tested table-driven with no database, and retrying it is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from shared.events import DomainEvent
from shared.ports import Analyzer, Message, Notifier
from shared.settings import Settings
from shared.store import Store, Write

C = TypeVar("C")


@dataclass(frozen=True)
class Decision:
    """Results to write, events to publish and messages to send, all idempotent:
    writes are upserts on natural keys, events have deterministic ids, messages
    have dedupe keys."""

    writes: Sequence[Write] = ()
    events: Sequence[DomainEvent] = ()
    messages: Sequence[Message] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageOutcome:
    message: Message
    status: str  # sent | unconfigured | unknown, or what an earlier attempt recorded
    channel: str | None = None
    transport: str | None = None


class Deps:
    """What ``load`` may use. Built once per process, lazily: a function whose
    agent never calls the analyzer never pays for loading it."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        analyzer_factory: Callable[[], Analyzer],
        notifier_factory: Callable[[Mapping[str, Any]], Notifier | None],
    ) -> None:
        self.settings = settings
        self.store = store
        self._analyzer_factory = analyzer_factory
        self._notifier_factory = notifier_factory
        self._analyzer: Analyzer | None = None

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            self._analyzer = self._analyzer_factory()
        return self._analyzer

    def notifier_for(self, project_id: UUID) -> Notifier | None:
        rows = self.store.select("project_integrations", eq={"project_id": project_id})
        return self._notifier_factory(rows[0] if rows else {})


class Agent(Protocol[C]):
    name: str

    def load(self, event: DomainEvent, deps: Deps) -> C:
        """Read what the decision needs (rows, AI answers). All I/O lives here."""
        ...

    def decide(self, event: DomainEvent, context: C) -> Decision:
        """Pure: the same event and context always give the same decision."""
        ...


class PublishesAfterSending(Protocol):
    """Agents with messages publish follow-on events only once they know what
    happened to each message (sent, or recorded without Slack)."""

    def after_sending(self, event: DomainEvent, outcomes: Sequence[MessageOutcome]) -> list[DomainEvent]: ...
