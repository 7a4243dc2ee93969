"""The rubric judged by OpenAI (structured outputs), when a key is set.

The model judges the items that need reading (problem, stories, criteria,
metrics, open questions, vague words); evidence ids and length are always
checked here, against the database and by counting: a model cannot know which
feedback ids are real. Points come from the rubric, never from the model. An
answer that misses or repeats an item is re-asked once, then the delivery
fails permanently (dead-lettered, replayable).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import BaseModel

from functions.spec_quality import rubric

if TYPE_CHECKING:
    from shared.analyzers.openai_analyzer import OpenAIAnalyzer

JUDGED = ("problem", "user_stories", "acceptance_criteria", "success_metrics", "open_questions", "vague_words")
PROMPT = (
    "You review product specs against a rubric. For each item give passed (true/false), a one-sentence "
    "finding quoting the spec where useful, and a concrete fix. Items: problem (the problem is stated: who, "
    "what goes wrong), user_stories (every story is 'As a <role>, I want <goal> so that <benefit>'), "
    "acceptance_criteria (at least two, each testable by an observable result), success_metrics (each has a "
    "target number and a time frame), open_questions (at least one real open question), vague_words (no "
    "vague words such as intuitive, fast, easy, better, seamless). Return exactly one verdict per item."
)


class ItemVerdict(BaseModel):
    item: str
    passed: bool
    finding: str
    fix: str


class QualityAnswer(BaseModel):
    verdicts: list[ItemVerdict]


def _check(answer: QualityAnswer) -> dict[str, ItemVerdict]:
    from shared.analyzers.openai_analyzer import MalformedAnswer

    items = [v.item for v in answer.verdicts]
    if sorted(items) != sorted(JUDGED):
        raise MalformedAnswer(f"expected one verdict for each of {', '.join(JUDGED)}; got {items}")
    if any(not v.finding.strip() or (not v.passed and not v.fix.strip()) for v in answer.verdicts):
        raise MalformedAnswer("every verdict needs a finding, and a failed one a fix")
    return {v.item: v for v in answer.verdicts}


def review(analyzer: OpenAIAnalyzer, title: str, content: Mapping[str, Any],
           known_feedback: Collection[UUID]) -> rubric.Review:
    spec = json.dumps({"title": title, **{k: content.get(k) for k in (
        "problem", "user_stories", "acceptance_criteria", "success_metrics", "open_questions")}})
    verdicts = analyzer.ask(QualityAnswer, PROMPT, spec[:12000], _check)
    findings = []
    for item in rubric.POINTS:
        if item == "evidence":
            findings.append(rubric.evidence(content, known_feedback))
        elif item == "length":
            findings.append(rubric.length(title, content))
        else:
            v = verdicts[item]
            points = rubric.POINTS[item] if v.passed else 0
            findings.append(rubric.Finding(item, v.passed, points, rubric.POINTS[item], v.finding.strip()[:500],
                                           v.fix.strip()[:500]))
    return rubric.Review(sum(f.points for f in findings), findings, analyzer.model)
