"""The deterministic offline analyzer: no network, no API key, no download.

It serves when ``OPENAI_API_KEY`` is unset and must stay light enough for a
serverless cold start: nothing heavy is imported here, the sentiment lexicons
(~0.15 s) and the embedding table (~16 MB, ~0.3 s) load on first use and are
then shared by every :class:`OfflineAnalyzer` in the process.

- sentiment: a multinomial logistic regression (plain Python, weights shipped
  in the package: :mod:`shared.analyzers.sentiment_model`) over VADER, the pattern
  lexicon bundled in ``textblob``, product-feedback cues
  (:mod:`shared.analyzers.offline_sentiment`) and the text's character
  n-grams, trained on public labeled data;
- embeddings: WordLlama l2_supercat 256-d, bundled in the ``wordllama`` wheel
  (see :mod:`shared.analyzers.offline_embedding`);
- theme names and spec drafts: key phrases and templates.

Every method accepts any text (empty, whitespace, 100k characters, any
language, emoji) and never raises on its content.

numpy and the embedding module are imported on the first embedding, so a
function that only scores sentiment never imports numpy (0.1-0.2 s of its
cold start).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from shared.analyzers import offline_competitive, offline_sentiment, offline_spec, offline_text, sentiment_model
from shared.mentions import Mention, sentences_with
from shared.ports import CompetitorSignal, FeedbackItem, Sentiment, SpecDraft

if TYPE_CHECKING:
    import numpy as np

    from shared.analyzers.offline_embedding import WordLlamaEmbedder


@lru_cache(maxsize=1)
def _sentiment_engine() -> offline_sentiment.LexiconSentiment:
    return offline_sentiment.LexiconSentiment()


@lru_cache(maxsize=1)
def _embedder() -> WordLlamaEmbedder:
    from shared.analyzers.offline_embedding import WordLlamaEmbedder

    return WordLlamaEmbedder()


class OfflineAnalyzer:
    """Implements :class:`shared.ports.Analyzer` without any service."""

    @property
    def model(self) -> str:
        return sentiment_model.MODEL_NAME

    @property
    def embedding_model(self) -> str:
        from shared.analyzers import offline_embedding

        return offline_embedding.MODEL_NAME

    @property
    def dimension(self) -> int:
        from shared.analyzers import offline_embedding

        return offline_embedding.DIMENSION

    def sentiment(self, texts: Sequence[str]) -> list[Sentiment]:
        """Label = the most probable class; score = P(positive) - P(negative);
        confidence = the label's probability. A text with nothing to read
        (empty, whitespace) is neutral with full confidence."""
        if not texts:
            return []
        probs = sentiment_model.load().probabilities(sentiment_model.features(_sentiment_engine(), texts), texts)
        out = []
        for text, row in zip(texts, probs, strict=True):
            if not (text if isinstance(text, str) else str(text)).strip():
                out.append(Sentiment(label="neutral", score=0.0, confidence=1.0, model=self.model))
                continue
            k = max(range(len(row)), key=row.__getitem__)
            out.append(Sentiment(label=sentiment_model.LABELS[k], score=round(row[2] - row[0], 6),
                                 confidence=round(row[k], 6), model=self.model))
        return out

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in _embedder().embed(list(texts))]

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """The same vectors as a float32 ``numpy`` array (for bulk work)."""
        return _embedder().embed(list(texts))

    def name_theme(self, texts: Sequence[str]) -> str:
        return offline_text.name_theme(texts)

    def draft_spec(self, theme: str, items: Sequence[FeedbackItem]) -> SpecDraft:
        sentiments = self.sentiment([i.text for i in items])
        return offline_spec.draft(theme, items, sentiments, self.model)

    def competitor_signals(self, text: str, mentions: Sequence[Mention]) -> list[CompetitorSignal]:
        """Rules over the sentences naming each competitor (see :mod:`shared.analyzers.offline_competitive`)."""
        engine = _sentiment_engine()
        signals = []
        for m in mentions:
            said = sentences_with(text, m.terms or (m.matched,)) or [(m.quote, [m.matched])]
            pairs = [(sentence, term) for sentence, named in said for term in named]
            found = [f for sentence, term in pairs for f in offline_competitive.features(sentence, term)]
            signals.append(CompetitorSignal(
                competitor=m.name, sentiment=engine.score(" ".join(s for s, _ in said)).label,
                switching_intent=any(offline_competitive.switching_intent(s, t) for s, t in pairs),
                features=list(dict.fromkeys(found)), model=offline_competitive.MODEL_NAME))
        return signals
