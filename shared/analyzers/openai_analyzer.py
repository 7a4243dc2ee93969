"""The :class:`~shared.ports.Analyzer` backed by OpenAI (or any compatible server).

Chat answers use structured outputs (a strict JSON schema built from a pydantic
model) and are validated again here; a malformed answer is re-asked once, then
becomes a :class:`PermanentError`. Transport failures are mapped onto the error
taxonomy so the delivery ledger, not the SDK, decides about retrying: keep
``max_retries`` low. ``openai`` is imported lazily (it costs ~0.7 s), so
importing this module is cheap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ValidationError

from shared.analyzers import openai_competitive
from shared.analyzers.openai_answers import (
    SENTIMENT_PROMPT,
    SPEC_PROMPT,
    THEME_PROMPT,
    SentimentBatch,
    SpecAnswer,
    ThemeName,
)
from shared.analyzers.openai_errors import map_openai_error
from shared.errors import (
    ConfigurationError,
    PermanentError,
    SignalsLoopError,
)
from shared.mentions import Mention
from shared.ports import CompetitorSignal, Evidence, FeedbackItem, Sentiment, SpecDraft

if TYPE_CHECKING:
    import httpx2
    from openai import OpenAI

Answer = TypeVar("Answer", bound=BaseModel)
Result = TypeVar("Result")
MAX_TEXT_CHARS = 2000  # per input text, to bound tokens
MAX_SPEC_ITEMS = 40


class _Malformed(Exception):
    """The model answered, but not usefully; worth one re-ask."""


class OpenAIAnalyzer:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = "gpt-4o-mini",
        embedding_model: str = "text-embedding-3-small",
        embedding_dimensions: int | None = 256,
        timeout_s: float = 20.0,
        max_retries: int = 1,
        temperature: float | None = 0.0,
        client: OpenAI | None = None,
    ) -> None:
        """``base_url=None`` lets the SDK read ``OPENAI_BASE_URL`` (else api.openai.com);
        ``embedding_dimensions=None`` omits the parameter for models without it;
        ``temperature=None`` omits it for models that reject it. An injected
        ``client`` (tests) is used as is, without the 429 hook below."""
        self._model = model
        self._embedding_model = embedding_model
        self._dimensions = embedding_dimensions
        self._temperature = temperature
        self._client = client
        self._client_args: dict[str, Any] = {
            "api_key": api_key, "base_url": base_url,
            "timeout": timeout_s, "max_retries": max_retries,
        }

    @property
    def model(self) -> str:
        return self._model

    @property
    def embedding_model(self) -> str:
        """The model name with the requested dimensions (``text-embedding-3-small@256``):
        vectors of one model at different dimensions must not be compared either."""
        if self._dimensions is None:
            return self._embedding_model
        return f"{self._embedding_model}@{self._dimensions}"

    @property
    def client(self) -> OpenAI:
        """The SDK client, built on first use."""
        if self._client is None:
            from openai import DefaultHttpx2Client, OpenAI, OpenAIError

            hooks = {"response": [_leave_rate_limits_to_the_ledger]}
            try:
                self._client = OpenAI(
                    **self._client_args, http_client=DefaultHttpx2Client(event_hooks=hooks)
                )
            except OpenAIError as error:
                raise ConfigurationError(f"OpenAI client: {error}") from error
        return self._client

    # -- Analyzer -------------------------------------------------------------

    def sentiment(self, texts: Sequence[str], *, batch_size: int = 50) -> list[Sentiment]:
        results: list[Sentiment] = []
        for start in range(0, len(texts), batch_size):
            results.extend(self._sentiment_batch(texts[start : start + batch_size]))
        return results

    def embed(self, texts: Sequence[str], *, batch_size: int = 256) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            vectors.extend(self._embed_batch(texts[start : start + batch_size]))
        return vectors

    def name_theme(self, texts: Sequence[str]) -> str:
        if not texts:
            raise PermanentError("name_theme needs at least one text")
        listing = "\n".join(f"- {_clip(t)}" for t in texts)
        return self._ask(ThemeName, THEME_PROMPT, f"Feedback:\n{listing}", _check_theme)

    def draft_spec(self, theme: str, items: Sequence[FeedbackItem]) -> SpecDraft:
        chosen = sorted(items, key=lambda item: -item.votes)[:MAX_SPEC_ITEMS]
        listing = [{"id": str(i.id), "votes": i.votes, "title": i.title,
                    "body": _clip(i.body, 1000)} for i in chosen]
        user = f"Theme: {theme}\nFeedback (JSON):\n{json.dumps(listing, ensure_ascii=False)}"
        return self._ask(SpecAnswer, SPEC_PROMPT, user, lambda a: self._check_spec(a, chosen))

    def competitor_signals(self, text: str, mentions: Sequence[Mention]) -> list[CompetitorSignal]:
        if not mentions:
            return []
        return self._ask(openai_competitive.CompetitorAnswer, openai_competitive.PROMPT,
                         openai_competitive.question(text, mentions), lambda a: self._check_competitors(a, mentions))

    # -- internals ------------------------------------------------------------

    def _check_competitors(self, answer: openai_competitive.CompetitorAnswer,
                           mentions: Sequence[Mention]) -> list[CompetitorSignal]:
        try:
            return openai_competitive.check(answer, mentions, self._model)
        except ValueError as error:
            raise _Malformed(str(error)) from error

    def _sentiment_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        inputs = [{"index": i, "text": _clip(t)} for i, t in enumerate(texts)]
        user = f"Inputs (JSON):\n{json.dumps(inputs, ensure_ascii=False)}"
        return self._ask(
            SentimentBatch, SENTIMENT_PROMPT, user, lambda a: self._check_sentiment(a, len(texts))
        )

    def _check_sentiment(self, answer: SentimentBatch, expected: int) -> list[Sentiment]:
        ordered = sorted(answer.results, key=lambda r: r.index)
        if [r.index for r in ordered] != list(range(expected)):
            raise _Malformed(f"expected one result for each index 0..{expected - 1}")
        try:
            return [
                Sentiment(label=r.label, score=r.score, confidence=r.confidence, model=self._model)
                for r in ordered
            ]
        except ValidationError as error:
            raise _Malformed(_summary(error)) from error

    def _check_spec(self, answer: SpecAnswer, items: Sequence[FeedbackItem]) -> SpecDraft:
        """Keep only evidence citing given items (votes taken from the item, not the model)."""
        by_id = {item.id: item for item in items}
        evidence = []
        for cited in answer.evidence:
            item = by_id.get(_as_uuid(cited.feedback_id))  # type: ignore[arg-type]
            if item is not None:  # invented ids are dropped
                evidence.append(Evidence(feedback_id=item.id, quote=cited.quote, votes=item.votes))
        if items and not evidence:
            raise _Malformed("evidence must cite feedback ids from the input")
        if not answer.title.strip():
            raise _Malformed("title is empty")
        fields = answer.model_dump(exclude={"evidence"})
        return SpecDraft(**fields, evidence=evidence, model=self._model)

    def _embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        extra: dict[str, Any] = {}
        if self._dimensions is not None:
            extra["dimensions"] = self._dimensions
        with _mapped_errors():
            response = self.client.embeddings.create(
                model=self._embedding_model, input=list(texts), encoding_format="float", **extra
            )
        data = sorted(response.data, key=lambda d: d.index)
        if [d.index for d in data] != list(range(len(texts))):
            raise PermanentError(f"embeddings: expected {len(texts)} vectors, got {len(data)}")
        return [self._unit(list(d.embedding)) for d in data]

    def _unit(self, vector: list[float]) -> list[float]:
        if self._dimensions is not None and len(vector) != self._dimensions:
            raise ConfigurationError(
                f"{self._embedding_model} returned {len(vector)} dimensions, "
                f"not {self._dimensions}; does it support the dimensions parameter?"
            )
        norm = math.sqrt(sum(x * x for x in vector))
        if not norm or not math.isfinite(norm):
            raise PermanentError("embeddings: got a zero or non-finite vector")
        return [x / norm for x in vector]

    def ask(
        self, schema: type[Answer], system: str, user: str, check: Callable[[Answer], Result]
    ) -> Result:
        """A structured call for an agent's own question (a spec review): ``check``
        turns the answer into the result or raises :class:`MalformedAnswer`, which
        is re-asked once and then becomes a :class:`PermanentError`."""
        return self._ask(schema, system, user, check)

    def _ask(
        self, schema: type[Answer], system: str, user: str, check: Callable[[Answer], Result]
    ) -> Result:
        """One structured call, checked by ``check``; a malformed answer is re-asked once."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        problem: _Malformed | None = None
        for _attempt in range(2):
            asked = messages
            if problem is not None:
                asked = [*messages, {"role": "user", "content": _reask_text(problem)}]
            try:
                return check(self._parse(schema, asked))
            except _Malformed as error:
                problem = error
        raise PermanentError(f"{self._model} gave a malformed {schema.__name__}: {problem}")

    def _parse(self, schema: type[Answer], messages: list[dict[str, str]]) -> Answer:
        extra: dict[str, Any] = {}
        if self._temperature is not None:
            extra["temperature"] = self._temperature
        with _mapped_errors():
            try:
                completion = self.client.chat.completions.parse(
                    model=self._model, messages=messages,  # type: ignore[arg-type]
                    response_format=schema, **extra,
                )
            except ValidationError as error:  # the SDK validates content against `schema`
                raise _Malformed(_summary(error)) from error
        if not completion.choices:
            raise _Malformed("no choices in the answer")
        message = completion.choices[0].message
        if message.refusal:
            raise PermanentError(f"{self._model} refused: {message.refusal[:200]}")
        if message.parsed is None:
            raise _Malformed("empty answer")
        return message.parsed


MalformedAnswer = _Malformed


def _leave_rate_limits_to_the_ledger(response: httpx2.Response) -> None:
    """Stop the SDK from sleeping out a 429's Retry-After (up to 2 minutes) inside
    the call: RateLimited carries the hint to the ledger instead. Other SDK
    retries (connection errors, 5xx) still follow ``max_retries``."""
    if response.status_code == 429:
        response.headers["x-should-retry"] = "false"


def _check_theme(answer: ThemeName) -> str:
    name = answer.name.strip().strip("\"'. ").strip()
    if not name or len(name.split()) > 8 or len(name) > 80:
        raise _Malformed(f"theme name must be 2-5 words, got {answer.name[:100]!r}")
    return name


def _as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value.strip())
    except ValueError:
        return None


def _clip(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in error.errors()[:5]
    )


def _reask_text(problem: _Malformed) -> str:
    return (
        f"Your previous answer was rejected: {problem}. "
        "Answer again, following the JSON schema and the instructions exactly."
    )


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """Turn ``openai`` exceptions raised inside the block into the error taxonomy."""
    try:
        yield
    except (SignalsLoopError, _Malformed):
        raise
    except Exception as error:
        mapped = map_openai_error(error)
        if mapped is None:
            raise
        raise mapped from error
