"""The spec-quality rubric, offline: completeness and clarity of a spec, each
item with its points, what was found and how to fix it. Pure and deterministic.

Items (points, 100 in all): problem stated (15), evidence linked to real
feedback ids (20), user stories as role/goal/benefit (15), testable acceptance
criteria (15), success metrics with a number and a time frame (15), open
questions (5), no vague words (10), a readable length (5).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

MODEL = "offline-rubric-v1"
POINTS: dict[str, int] = {"problem": 15, "evidence": 20, "user_stories": 15, "acceptance_criteria": 15,
                          "success_metrics": 15, "open_questions": 5, "vague_words": 10, "length": 5}
MIN_WORDS, MAX_WORDS = 80, 2500

STORY = re.compile(r"^\s*as an?\s+.{2,80}?,?\s+i (?:want|need|can)\s+.{3,}?\s+so that\s+.{3,}", re.IGNORECASE)
NUMBER = re.compile(r"\d")
TIME_FRAME = re.compile(r"\b(?:within|by|per|each|every|after|in)\s+(?:the\s+)?(?:first\s+)?(?:\d+\s+)?"
                        r"(?:days?|weeks?|months?|quarters?|years?|sprints?|releases?|q[1-4]\b)"
                        r"|\b\d+\s*(?:days?|weeks?|months?|quarters?|years?)\b|\bq[1-4]\b|\b20\d\d\b",
                        re.IGNORECASE)
OBSERVABLE = re.compile(r"\b(?:given|when|then|can|cannot|no longer|is shown|are shown|shows|returns|"
                        r"appears|displays|is (?:saved|sent|stored|listed|covered|answered)|does not|"
                        r"must|within|at most|at least|fails?|succeeds?)\b|\d", re.IGNORECASE)
VAGUE = ("intuitive", "user-friendly", "user friendly", "seamless", "seamlessly", "easy", "easily", "simple",
         "simply", "fast", "quickly", "better", "robust", "flexible", "etc", "as needed", "appropriate",
         "appropriately", "various", "nice", "efficient", "optimal", "modern", "reliably", "properly", "soon")
VAGUE_RE = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in VAGUE) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    item: str
    passed: bool
    points: int
    max_points: int
    finding: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Review:
    score: int
    findings: list[Finding]
    model: str

    @property
    def fixes(self) -> list[str]:
        return [f.fix for f in self.findings if not f.passed]


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Sequence):
        return [str(v.get("text") or v.get("quote") or "") if isinstance(v, Mapping) else str(v)
                for v in value if v]
    return []


def _share(item: str, good: int, total: int, found: str, fix: str) -> Finding:
    points = round(POINTS[item] * good / total) if total else 0
    return Finding(item, total > 0 and good == total, points, POINTS[item], found, fix)


def problem(content: Mapping[str, Any], known: Collection[UUID]) -> Finding:
    text = " ".join(_texts(content.get("problem")))
    ok = len(text.split()) >= 8
    return Finding("problem", ok, POINTS["problem"] if ok else 0, POINTS["problem"],
                   "problem stated" if ok else "no problem statement (or under 8 words)",
                   "State the problem in 2-3 sentences: who is affected, what goes wrong, how often.")


def evidence(content: Mapping[str, Any], known: Collection[UUID]) -> Finding:
    ids: list[UUID | None] = []
    for e in content.get("evidence") or []:
        try:
            ids.append(UUID(str(e.get("feedback_id"))) if isinstance(e, Mapping) else None)
        except ValueError:
            ids.append(None)
    real = sum(1 for i in ids if i is not None and i in known)
    fix = "Link at least two quotes to the feedback items they come from (their real ids)."
    if not ids:
        return Finding("evidence", False, 0, POINTS["evidence"], "no evidence linked to feedback", fix)
    found = f"{real} of {len(ids)} evidence items link to real feedback in this project"
    finding = _share("evidence", real, len(ids), found, fix)
    if real < 2:
        return Finding("evidence", False, min(finding.points, POINTS["evidence"] // 2), POINTS["evidence"],
                       found + " (fewer than two)", fix)
    return finding


def user_stories(content: Mapping[str, Any], known: Collection[UUID]) -> Finding:
    stories = _texts(content.get("user_stories"))
    good = sum(1 for s in stories if STORY.match(s))
    return _share("user_stories", good, len(stories),
                  f"{good} of {len(stories)} user stories read as role/goal/benefit" if stories else "no user stories",
                  "Write each story as \"As a <role>, I want <goal> so that <benefit>.\"")


def acceptance_criteria(content: Mapping[str, Any], known: Collection[UUID]) -> Finding:
    criteria = _texts(content.get("acceptance_criteria"))
    good = sum(1 for c in criteria if OBSERVABLE.search(c) and not VAGUE_RE.search(c))
    if len(criteria) < 2:
        return Finding("acceptance_criteria", False, 0 if not criteria else POINTS["acceptance_criteria"] // 3,
                       POINTS["acceptance_criteria"], f"{len(criteria)} acceptance criteria (fewer than two)",
                       "Add at least two criteria a tester can check (Given/When/Then, or an observable result).")
    return _share("acceptance_criteria", good, len(criteria), f"{good} of {len(criteria)} criteria are testable",
                  "Rewrite each criterion as an observable result (Given/When/Then), without vague words.")


def success_metrics(content: Mapping[str, Any], known: Collection[UUID]) -> Finding:
    metrics = _texts(content.get("success_metrics"))
    good = sum(1 for m in metrics if NUMBER.search(TIME_FRAME.sub("", m)) and TIME_FRAME.search(m))
    found = f"{good} of {len(metrics)} metrics have a number and a time frame" if metrics else "no success metrics"
    return _share("success_metrics", good, len(metrics), found,
                  "Give each metric a target number and a time frame (\"-50% within 30 days of release\").")


def open_questions(content: Mapping[str, Any], known: Collection[UUID]) -> Finding:
    n = len(_texts(content.get("open_questions")))
    return Finding("open_questions", n > 0, POINTS["open_questions"] if n else 0, POINTS["open_questions"],
                   f"{n} open questions" if n else "no open questions",
                   "List what is still unknown (segments affected, edge cases, dependencies).")


def _all_text(title: str, content: Mapping[str, Any]) -> str:
    parts = [title, *_texts(content.get("problem"))]
    for key in ("user_stories", "acceptance_criteria", "success_metrics", "open_questions"):
        parts += _texts(content.get(key))
    return "\n".join(parts)


def vague_words(title: str, content: Mapping[str, Any]) -> Finding:
    found = sorted({m.group(0).lower() for m in VAGUE_RE.finditer(_all_text(title, content))})
    points = POINTS["vague_words"] if not found else (POINTS["vague_words"] // 2 if len(found) <= 2 else 0)
    return Finding("vague_words", not found, points, POINTS["vague_words"],
                   "no vague words" if not found else "vague words: " + ", ".join(found),
                   "Replace vague words with what they mean, measurably (\"fast\" -> \"under 2 s\").")


def length(title: str, content: Mapping[str, Any]) -> Finding:
    words = len(_all_text(title, content).split()) + sum(
        len(str(e.get("quote", "")).split()) for e in content.get("evidence") or [] if isinstance(e, Mapping))
    ok = MIN_WORDS <= words <= MAX_WORDS
    return Finding("length", ok, POINTS["length"] if ok else 0, POINTS["length"], f"{words} words",
                   f"Keep a spec between {MIN_WORDS} and {MAX_WORDS} words: "
                   + ("add the missing detail." if words < MIN_WORDS else "split it or cut repetition."))


CONTENT_CHECKS: tuple[Callable[[Mapping[str, Any], Collection[UUID]], Finding], ...] = (
    problem, evidence, user_stories, acceptance_criteria, success_metrics, open_questions)


def review(title: str, content: Mapping[str, Any], known_feedback: Collection[UUID]) -> Review:
    """Score a spec; ``known_feedback`` holds the ids of feedback that exists in its project."""
    findings = [check(content, known_feedback) for check in CONTENT_CHECKS]
    findings += [vague_words(title, content), length(title, content)]
    return Review(sum(f.points for f in findings), findings, MODEL)


def evidence_ids(content: Mapping[str, Any]) -> list[UUID]:
    out = []
    for e in content.get("evidence") or []:
        try:
            out.append(UUID(str(e.get("feedback_id"))))
        except (ValueError, AttributeError):
            continue
    return out
