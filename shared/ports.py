"""The small ports agents depend on: an analyzer (AI) and a notifier (Slack).

Adapters are named by technology: ``OfflineAnalyzer`` and ``OpenAIAnalyzer``
in :mod:`shared.analyzers`, ``SlackNotifier`` in :mod:`shared.notifiers`.
The store port lives in :mod:`shared.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.mentions import Mention

SentimentLabel = Literal["negative", "neutral", "positive"]


class Sentiment(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: SentimentLabel
    score: float = Field(ge=-1.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    model: str


class FeedbackItem(BaseModel):
    """One piece of feedback as an analyzer sees it."""

    id: UUID
    title: str = ""
    body: str = ""
    votes: int = 0

    @property
    def text(self) -> str:
        return f"{self.title}. {self.body}".strip(". ") if self.body else self.title


class Evidence(BaseModel):
    feedback_id: UUID
    quote: str
    votes: int = 0


class SpecDraft(BaseModel):
    title: str
    problem: str
    evidence: list[Evidence]
    user_stories: list[str]
    acceptance_criteria: list[str]
    success_metrics: list[str]
    open_questions: list[str]
    model: str


class CompetitorSignal(BaseModel):
    """What one piece of feedback says about one competitor it mentions."""

    competitor: str  # the catalogue name it was asked about
    sentiment: SentimentLabel
    switching_intent: bool  # the writer is leaving (or thinking of leaving) for it
    features: list[str] = Field(default_factory=list)  # what the competitor has, in a few words each
    model: str


class Analyzer(Protocol):
    """Everything the agents ask of AI. Implementations must be deterministic
    enough to test (the offline one is fully deterministic)."""

    @property
    def model(self) -> str:
        """Name of the model family, recorded with every result."""
        ...

    @property
    def embedding_model(self) -> str:
        """Name of the embedding model; only embeddings of one model are compared."""
        ...

    def sentiment(self, texts: Sequence[str]) -> list[Sentiment]: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text, all of one dimension."""
        ...

    def name_theme(self, texts: Sequence[str]) -> str:
        """A short human name (2-5 words) for what the texts have in common."""
        ...

    def draft_spec(self, theme: str, items: Sequence[FeedbackItem]) -> SpecDraft: ...

    def competitor_signals(self, text: str, mentions: Sequence[Mention]) -> list[CompetitorSignal]:
        """One signal per mention (competitors found in ``text``), in that order."""
        ...


class Message(BaseModel):
    """An outbound notification. ``key`` is its idempotency key: one key, one send."""

    key: str
    # The notification's id, known before sending (a Slack message's buttons
    # carry it back to functions/slack_actions).
    id: UUID | None = None
    project_id: UUID
    channel: str | None = None
    text: str
    importance: Literal["low", "normal", "high", "urgent"] = "normal"
    # What scored and worded it (stored in notifications.model).
    model: str | None = None


class SendReceipt(BaseModel):
    ok: bool
    channel: str | None = None
    ts: str | None = None
    transport: str


class Notifier(Protocol):
    def send(self, message: Message) -> SendReceipt:
        """Send once. Raise a retriable error for transient failures and a
        :class:`shared.errors.PermanentError` when Slack rejects the message."""
        ...
