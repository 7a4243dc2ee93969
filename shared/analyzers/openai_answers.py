"""What the OpenAI analyzer asks and the shapes it accepts back: the system
prompts and the answer schemas (strict JSON schemas are built from these
pydantic models)."""

from __future__ import annotations

from pydantic import BaseModel

from shared.ports import SentimentLabel


# Answer schemas. Docstrings here would be sent to the model as schema
# descriptions, so they have none; range keywords are left out too (not every
# compatible server accepts them) and checked when the ports' models are built.
class SentimentResult(BaseModel):
    index: int
    label: SentimentLabel
    score: float
    confidence: float


class SentimentBatch(BaseModel):
    results: list[SentimentResult]


class ThemeName(BaseModel):
    name: str


class CitedEvidence(BaseModel):
    feedback_id: str
    quote: str


class SpecAnswer(BaseModel):
    title: str
    problem: str
    evidence: list[CitedEvidence]
    user_stories: list[str]
    acceptance_criteria: list[str]
    success_metrics: list[str]
    open_questions: list[str]


SENTIMENT_PROMPT = (
    "You label the sentiment of product feedback. For every input, identified by its index, "
    "return label (negative, neutral or positive), score from -1 (very negative) to 1 "
    "(very positive) and confidence from 0 to 1. Return exactly one result per input."
)
THEME_PROMPT = (
    "You name product-feedback themes. Give a short, plain name of 2 to 5 words for what "
    "all the given feedback has in common. No quotes, no trailing punctuation."
)
SPEC_PROMPT = (
    "You are a product manager drafting a spec from user feedback. Be concrete and brief. "
    "Evidence must quote the feedback verbatim and cite its exact id from the input; "
    "never invent ids. Acceptance criteria must be testable."
)
