"""spec_quality: the rubric table-driven (a spec with and without each item),
decide, OpenAI against the fake server (good and malformed answers), and the
agent over HTTP on the real database: one check per spec version, an edit
checks again, a low score reaches notify for the spec's owner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from functions.spec_quality import openai_review, rubric
from functions.spec_quality.agent import Context, decide
from shared.analyzers.openai_analyzer import OpenAIAnalyzer
from shared.errors import PermanentError
from shared.events import EventType
from tests.fakes.openai_server import FakeOpenAIServer
from tests.functions.conftest import PROJECT, Pipeline, assert_follows, make_event, rows, writes_to
from tests.helpers import Seed

F1, F2 = UUID(int=0xF1), UUID(int=0xF2)
GOOD: dict[str, Any] = {
    "problem": "Night-shift users report that the white interface strains their eyes and that they cannot "
               "read charts in dark rooms; 24 items with 130 votes ask for a dark theme.",
    "evidence": [{"feedback_id": str(F1), "quote": "Please add dark mode, my eyes hurt at night", "votes": 40},
                 {"feedback_id": str(F2), "quote": "The white screen is blinding in the control room", "votes": 12}],
    "user_stories": ["As a night-shift operator, I want a dark theme so that I can read charts without eye strain.",
                     "As an admin, I want to set the theme for my team so that screens match the room."],
    "acceptance_criteria": ["Given dark mode is on, when a user opens any page, then no white background is shown.",
                            "The chosen theme is saved and restored at the next sign-in."],
    "success_metrics": ["Feedback about eye strain falls by at least 50% within 30 days of release.",
                        "30% of weekly active users switch to dark mode within 60 days."],
    "open_questions": ["Do charts need their own dark palette?"],
}


def score_of(content: dict[str, Any], known: set[UUID] | None = None, title: str = "Build: dark mode") -> rubric.Review:
    return rubric.review(title, content, {F1, F2} if known is None else known)


def item(review: rubric.Review, name: str) -> rubric.Finding:
    return next(f for f in review.findings if f.item == name)


def test_a_complete_spec_passes_every_item() -> None:
    review = score_of(GOOD)
    assert review.score == 100, [f for f in review.findings if not f.passed]
    assert review.fixes == [] and review.model == rubric.MODEL
    assert [f.item for f in review.findings] == list(rubric.POINTS) and sum(rubric.POINTS.values()) == 100


WITHOUT: list[Any] = [
    pytest.param("problem", {"problem": ""}, id="no problem"),
    pytest.param("problem", {"problem": "Dark mode."}, id="a problem of two words"),
    pytest.param("evidence", {"evidence": []}, id="no evidence"),
    pytest.param("evidence", {"evidence": [{"feedback_id": str(uuid4()), "quote": "made up"},
                                           {"feedback_id": "not-an-id", "quote": "x"}]}, id="invented ids"),
    pytest.param("user_stories", {"user_stories": []}, id="no stories"),
    pytest.param("user_stories", {"user_stories": ["Dark mode for everyone", GOOD["user_stories"][0]]},
                 id="a story without role/goal/benefit"),
    pytest.param("acceptance_criteria", {"acceptance_criteria": []}, id="no criteria"),
    pytest.param("acceptance_criteria", {"acceptance_criteria": ["Dark mode looks nice", "It is intuitive"]},
                 id="untestable criteria"),
    pytest.param("success_metrics", {"success_metrics": ["Users are happier"]}, id="a metric without a number"),
    pytest.param("success_metrics", {"success_metrics": ["50% of users use dark mode"]}, id="no time frame"),
    pytest.param("success_metrics", {"success_metrics": []}, id="no metrics"),
    pytest.param("open_questions", {"open_questions": []}, id="no open questions"),
    pytest.param("vague_words", {"problem": GOOD["problem"] + " It should be fast, easy and seamless."},
                 id="vague words"),
    pytest.param("length", {"problem": "Users need dark mode at night.", "evidence": [],
                            "user_stories": [], "success_metrics": [], "acceptance_criteria": [],
                            "open_questions": []}, id="too short"),
    pytest.param("length", {"open_questions": GOOD["open_questions"] * (rubric.MAX_WORDS // 6)}, id="too long"),
]


@pytest.mark.parametrize(("name", "change"), WITHOUT)
def test_a_spec_without_each_item_loses_its_points_and_gets_a_fix(name: str, change: dict[str, Any]) -> None:
    review = score_of({**GOOD, **change})
    finding = item(review, name)
    assert not finding.passed and finding.points < finding.max_points and finding.fix
    assert finding.fix in review.fixes
    assert review.score < 100 and review.score == sum(f.points for f in review.findings)


def test_the_evidence_must_exist_in_this_project() -> None:
    assert item(score_of(GOOD, known={F1}), "evidence").finding.startswith("1 of 2")
    assert not item(score_of(GOOD, known=set()), "evidence").passed


def test_the_offline_spec_writer_draft_scores_well_but_not_perfectly() -> None:
    from shared.analyzers.offline_spec import draft
    from shared.ports import FeedbackItem

    items = [FeedbackItem(id=F1, title="Dark mode please", body="I'd love a dark theme for night work", votes=9),
             FeedbackItem(id=F2, title="Dark theme", body="Please add dark mode, the white UI is too bright", votes=4)]
    spec = draft("Dark mode", items, [], "offline")
    review = score_of(spec.model_dump(mode="json"), title=spec.title)
    assert 60 <= review.score < 100
    assert not item(review, "success_metrics").passed  # "sentiment is positive after release" has no number


def spec_row(content: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {"id": UUID(int=0x5BEC), "project_id": PROJECT, "title": "Build: dark mode", "version": version,
            "content": content}


def test_decide_stores_one_check_per_version_and_announces_it() -> None:
    event = make_event(EventType.SPEC_AUTO_DRAFTED, {"spec_id": str(UUID(int=0x5BEC))}, aggregate_type="spec",
                       aggregate_id=UUID(int=0x5BEC))
    owner = uuid4()
    low = score_of({**GOOD, "success_metrics": [], "evidence": [], "user_stories": []})
    decision = decide(event, Context(spec_row(GOOD, 3), low, owner))
    (row,) = writes_to(decision, "spec_quality_checks")
    assert row["spec_version"] == 3 and row["score"] == low.score and row["model"] == rubric.MODEL
    assert {f["item"] for f in row["findings"]} == set(rubric.POINTS)
    (checked,) = decision.events
    assert checked.type == EventType.SPEC_QUALITY_CHECKED and checked.payload["low"] is True
    assert checked.payload["owner_id"] == str(owner) and checked.payload["fixes"] == low.fixes
    assert_follows(checked, event, "spec_quality")
    again = decide(make_event(EventType.SPEC_UPDATED, {}, aggregate_type="spec", aggregate_id=UUID(int=0x5BEC)),
                   Context(spec_row(GOOD, 3), low, owner))
    assert again.events[0].id == checked.id  # per version, whichever event asked
    done = decide(event, Context(spec_row(GOOD, 3), None, owner, already_checked=True))
    assert not done.writes and not done.events
    assert not decide(event, Context(None, None, None)).writes


# -- OpenAI, against the fake server ------------------------------------------------------

@pytest.fixture
def openai(no_proxy: None) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def analyzer(openai: FakeOpenAIServer) -> OpenAIAnalyzer:
    return OpenAIAnalyzer(api_key="k", base_url=openai.base_url, model="gpt-test", timeout_s=2.0, max_retries=0)


def verdicts(failing: str = "", items: tuple[str, ...] = openai_review.JUDGED) -> str:
    return json.dumps({"verdicts": [{"item": i, "passed": i != failing, "finding": f"about {i}",
                                     "fix": "do better" if i == failing else ""} for i in items]})


def test_openai_judges_the_reading_items_and_the_evidence_stays_checked_here(
        openai: FakeOpenAIServer, analyzer: OpenAIAnalyzer) -> None:
    openai.answer_chat(verdicts(failing="success_metrics"))
    review = openai_review.review(analyzer, "Build: dark mode", GOOD, {F1})
    assert review.model == "gpt-test"
    assert not item(review, "success_metrics").passed and item(review, "success_metrics").fix == "do better"
    assert item(review, "evidence").finding.startswith("1 of 2")  # not the model's call
    assert review.score == 100 - 15 - 10  # metrics failed, evidence half real
    sent = openai.chat_requests[0].json
    assert sent["response_format"]["type"] == "json_schema" and "dark theme" in sent["messages"][1]["content"]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(verdicts(items=openai_review.JUDGED[:-1]), id="an item missing"),
        pytest.param(verdicts(items=(*openai_review.JUDGED, "problem")), id="an item twice"),
        pytest.param('{"verdicts": [{"item": "problem"}]}', id="fields missing"),
        pytest.param("not json at all", id="not json"),
    ],
)
def test_a_malformed_answer_is_asked_again_once(openai: FakeOpenAIServer, analyzer: OpenAIAnalyzer,
                                                 bad: str) -> None:
    openai.answer_chat(bad)
    openai.answer_chat(verdicts())
    assert openai_review.review(analyzer, "t", GOOD, {F1, F2}).score == 100
    assert len(openai.chat_requests) == 2
    openai.answer_chat(bad)
    openai.answer_chat(bad)
    with pytest.raises(PermanentError, match="malformed"):
        openai_review.review(analyzer, "t", GOOD, {F1, F2})


# -- the agent on the real database ---------------------------------------------------------

def a_spec(seed: Seed, content: dict[str, Any]) -> tuple[UUID, UUID]:
    owner = seed.user()
    project = seed.project(owner=owner, slack_users={str(owner): "UOWNER"})
    posts = [seed.post(project, "Dark mode please", "My eyes hurt at night") for _ in range(2)]
    content = {**content, "evidence": [{"feedback_id": str(p), "quote": "Dark mode please", "votes": 1}
                                       for p in posts]}
    row = seed.conn.execute("insert into specs (project_id, title, content, source) values (%s, %s, %s, 'agent') "
                            "returning id", (project, "Build: dark mode", json.dumps(content))).fetchone()
    assert row is not None
    return project, row["id"]


def publish_drafted(pipeline: Pipeline, project: UUID, spec: UUID) -> dict[str, Any]:
    from shared.events import DomainEvent, EventMetadata

    eid = uuid4()
    pipeline.store.publish([DomainEvent(id=eid, type=EventType.SPEC_AUTO_DRAFTED, aggregate_type="spec",
                                        aggregate_id=spec, payload={"spec_id": str(spec)},
                                        metadata=EventMetadata(project_id=project, producer="spec_writer"))])
    (row,) = [r for r in pipeline.seed.events(EventType.SPEC_AUTO_DRAFTED) if r["id"] == eid]
    return row


def test_checks_each_version_once_and_a_low_score_notifies_the_owner(pipeline: Pipeline, seed: Seed) -> None:
    project, spec = a_spec(seed, {**GOOD, "problem": "", "user_stories": ["Dark mode"],
                                  "success_metrics": ["Users are happier"], "open_questions": []})
    drafted = publish_drafted(pipeline, project, spec)
    assert [d["agent"] for d in seed.deliveries(event_id=drafted["id"])] == ["notify", "spec_quality"]

    first = pipeline.deliver("spec_quality", drafted)
    assert first["status"] == "succeeded" and first["summary"]["version"] == 1, first
    assert pipeline.deliver("spec_quality", drafted)["status"] == "finished"
    seed.conn.execute("update specs set content = content || %s where id = %s",
                      (json.dumps({k: GOOD[k] for k in ("problem", "user_stories", "success_metrics",
                                                        "open_questions")}), spec))
    (updated,) = seed.events(EventType.SPEC_UPDATED)
    assert updated["payload"]["version"] == 2 and updated["payload"]["changed"] == ["content"]
    assert pipeline.deliver("spec_quality", updated)["status"] == "succeeded"

    checks = rows(seed, "select * from spec_quality_checks order by spec_version")
    assert [c["spec_version"] for c in checks] == [1, 2]
    assert checks[0]["score"] < 60 <= checks[1]["score"] == 100
    low, fine = seed.events(EventType.SPEC_QUALITY_CHECKED)
    assert low["payload"]["low"] is True and fine["payload"]["low"] is False
    # notify turns the low score into a high-importance message for the owner, once.
    for row in (low, low, fine):
        assert pipeline.deliver("notify", row)["code"] == 200
    notes = rows(seed, "select * from notifications where event_type = 'spec.quality_checked' order by created_at")
    assert [(n["importance"], n["status"]) for n in notes] == [("high", "unconfigured"), ("low", "queued")]
    assert "<@UOWNER>" in notes[0]["text"] and "scored" in notes[0]["text"]


def test_with_a_key_the_agent_asks_openai_and_dead_letters_a_malformed_answer(
        store: Any, seed: Seed, openai: FakeOpenAIServer, analyzer: OpenAIAnalyzer) -> None:
    """Through the runtime, as deployed with OPENAI_API_KEY: the model's verdicts
    are stored with its name; an answer malformed twice dead-letters the
    delivery and writes nothing."""
    from pydantic import SecretStr

    from shared.agent import Deps
    from shared.settings import Settings
    from tests.functions.conftest import SECRET

    pipeline = Pipeline(store, seed, analyzer)  # type: ignore[arg-type]
    settings = Settings(signalsloop_secret=SecretStr(SECRET), database_url="unused", openai_api_key=SecretStr("k"))
    pipeline.deps = Deps(settings, store, lambda: analyzer, lambda project: None)
    good_project, good_spec = a_spec(seed, GOOD)
    bad_project, bad_spec = a_spec(seed, GOOD)
    openai.answer_chat(verdicts(failing="success_metrics"))
    assert pipeline.deliver("spec_quality", publish_drafted(pipeline, good_project, good_spec))["status"] == "succeeded"
    openai.answer_chat("not json at all")
    openai.answer_chat(verdicts(items=openai_review.JUDGED[:-1]))
    failed = pipeline.deliver("spec_quality", publish_drafted(pipeline, bad_project, bad_spec))

    assert failed["status"] == "dead" and "malformed" in failed["message"], failed
    assert len(openai.chat_requests) == 3
    [check] = rows(seed, "select * from spec_quality_checks")
    assert (check["spec_id"], check["model"], check["score"]) == (good_spec, "gpt-test", 100 - 15)
    assert not next(f for f in check["findings"] if f["item"] == "success_metrics")["passed"]
    [checked] = seed.events(EventType.SPEC_QUALITY_CHECKED)
    assert checked["aggregate_id"] == good_spec and checked["payload"]["model"] == "gpt-test"
