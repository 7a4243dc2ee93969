"""OpenAIAnalyzer against a fake OpenAI server on loopback: the real SDK, the real wire."""

from __future__ import annotations

import email.utils
import json
import math
import subprocess
import sys
import time
from uuid import uuid4

import pytest
from pydantic import SecretStr

from shared.analyzers import build_analyzer
from shared.analyzers.openai_analyzer import OpenAIAnalyzer
from shared.errors import ConfigurationError, PermanentError, RateLimited, TransientError
from shared.ports import FeedbackItem
from shared.settings import Settings
from tests.fakes import Canned
from tests.fakes.openai_server import CHAT_PATH, EMBEDDINGS_PATH, FakeOpenAIServer


def sentiment_json(*rows: tuple[int, str, float, float]) -> str:
    results = [{"index": i, "label": label, "score": s, "confidence": c} for i, label, s, c in rows]
    return json.dumps({"results": results})


# -- sentiment ------------------------------------------------------------------


def test_sentiment_is_one_strict_structured_call(server: FakeOpenAIServer,
                                                 analyzer: OpenAIAnalyzer) -> None:
    server.answer_chat(sentiment_json((1, "negative", -0.7, 0.8), (0, "positive", 0.9, 0.95)))

    results = analyzer.sentiment(["Love the new editor", "Export keeps crashing"])

    assert [r.label for r in results] == ["positive", "negative"]  # by index, not answer order
    assert results[1].score == -0.7 and results[1].confidence == 0.8
    assert {r.model for r in results} == {"gpt-test"}
    (request,) = server.requests
    assert request.path == CHAT_PATH
    assert request.header("authorization") == "Bearer test-key"
    body = request.json
    assert body["model"] == "gpt-test"
    assert body["temperature"] == 0.0
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "SentimentBatch"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["required"] == ["results"]
    assert "Export keeps crashing" in body["messages"][-1]["content"]


def test_sentiment_of_nothing_makes_no_call(server: FakeOpenAIServer,
                                            analyzer: OpenAIAnalyzer) -> None:
    assert analyzer.sentiment([]) == []
    assert server.requests == []


def test_a_malformed_answer_is_reasked_once(server: FakeOpenAIServer,
                                           analyzer: OpenAIAnalyzer) -> None:
    server.answer_chat("this is not JSON")
    server.answer_chat(sentiment_json((0, "neutral", 0.0, 0.6)))

    assert analyzer.sentiment(["It works"])[0].label == "neutral"
    first, second = server.chat_requests
    assert len(second.json["messages"]) == len(first.json["messages"]) + 1
    assert "rejected" in second.json["messages"][-1]["content"]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param('{"results": [{"index": 0, "label": "positive"}]}', id="missing-fields"),
        pytest.param('{"results": [{"index": 0, "label": "ecstatic", "score": 1, '
                     '"confidence": 1}]}', id="unknown-label"),
        pytest.param(sentiment_json((0, "positive", 3.0, 0.5), (1, "neutral", 0, 0.5)),
                     id="score-out-of-range"),
        pytest.param(sentiment_json((0, "positive", 0.5, 0.5)), id="too-few-items"),
    ],
)
def test_a_malformed_answer_twice_is_permanent(server: FakeOpenAIServer,
                                              analyzer: OpenAIAnalyzer, answer: str) -> None:
    server.answer_chat(answer)
    server.answer_chat(answer)

    with pytest.raises(PermanentError, match="malformed SentimentBatch"):
        analyzer.sentiment(["one", "two"])
    assert len(server.chat_requests) == 2


def test_a_refusal_is_permanent_without_reask(server: FakeOpenAIServer,
                                             analyzer: OpenAIAnalyzer) -> None:
    server.refuse("I can't help with that.")

    with pytest.raises(PermanentError, match="refused"):
        analyzer.sentiment(["something"])
    assert len(server.chat_requests) == 1


# -- embeddings -----------------------------------------------------------------


def test_embed_asks_for_dimensions_and_returns_unit_vectors_in_order(
    server: FakeOpenAIServer, analyzer: OpenAIAnalyzer
) -> None:
    answer = {"object": "list", "model": "embed-test", "data": [
        {"object": "embedding", "index": 1, "embedding": [0.0] * 15 + [2.0]},
        {"object": "embedding", "index": 0, "embedding": [3.0, 4.0] + [0.0] * 14},
    ]}
    server.enqueue(Canned(200, answer), path=EMBEDDINGS_PATH)

    first, second = analyzer.embed(["alpha", "beta"])

    assert first[:2] == pytest.approx([0.6, 0.8]) and second[-1] == pytest.approx(1.0)
    body = server.embedding_requests[0].json
    assert body == {"model": "embed-test", "input": ["alpha", "beta"], "dimensions": 16,
                    "encoding_format": "float"}


def test_embed_vectors_are_unit_length(analyzer: OpenAIAnalyzer) -> None:
    vectors = analyzer.embed(["a", "b", "c"])  # the fake's default, non-normalised vectors
    assert [len(v) for v in vectors] == [16, 16, 16]
    assert all(math.isclose(math.hypot(*v), 1.0) for v in vectors)


def test_embed_rejects_vectors_of_another_dimension(server: FakeOpenAIServer) -> None:
    analyzer = OpenAIAnalyzer(api_key="k", base_url=server.base_url, embedding_dimensions=16,
                              max_retries=0)
    server.enqueue(Canned(200, {"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}]}), path=EMBEDDINGS_PATH)
    with pytest.raises(ConfigurationError, match="2 dimensions"):
        analyzer.embed(["a"])


# -- theme and spec ---------------------------------------------------------------


def test_name_theme(server: FakeOpenAIServer, analyzer: OpenAIAnalyzer) -> None:
    server.answer_chat(json.dumps({"name": ' "Dark mode support". '}))

    assert analyzer.name_theme(["Please add dark mode", "My eyes hurt at night"]) == (
        "Dark mode support"
    )
    body = server.chat_requests[0].json
    assert body["response_format"]["json_schema"]["name"] == "ThemeName"
    assert "My eyes hurt at night" in body["messages"][-1]["content"]


def spec_json(*evidence_ids: str) -> str:
    return json.dumps({
        "title": "Dark mode", "problem": "Bright UI at night",
        "evidence": [{"feedback_id": i, "quote": "please add dark mode"} for i in evidence_ids],
        "user_stories": ["As a user I want dark mode"], "acceptance_criteria": ["Toggle exists"],
        "success_metrics": ["10% adoption"], "open_questions": ["Follow the OS?"],
    })


def test_draft_spec_keeps_only_evidence_citing_given_items(
    server: FakeOpenAIServer, analyzer: OpenAIAnalyzer
) -> None:
    item = FeedbackItem(id=uuid4(), title="Dark mode", body="please add dark mode", votes=12)
    server.answer_chat(spec_json(str(item.id).upper(), str(uuid4()), "not-an-id"))

    spec = analyzer.draft_spec("Dark mode", [item])

    assert [(e.feedback_id, e.votes) for e in spec.evidence] == [(item.id, 12)]
    assert spec.model == "gpt-test" and spec.acceptance_criteria == ["Toggle exists"]
    body = server.chat_requests[0].json
    assert body["response_format"]["json_schema"]["name"] == "SpecAnswer"
    assert str(item.id) in body["messages"][-1]["content"]


def test_draft_spec_citing_only_invented_ids_is_permanent(
    server: FakeOpenAIServer, analyzer: OpenAIAnalyzer
) -> None:
    item = FeedbackItem(id=uuid4(), title="Dark mode")
    server.answer_chat(spec_json(str(uuid4())))
    server.answer_chat(spec_json(str(uuid4())))

    with pytest.raises(PermanentError, match="evidence"):
        analyzer.draft_spec("Dark mode", [item])


# -- transport errors -----------------------------------------------------------------


def test_429_with_retry_after_seconds_is_rate_limited(server: FakeOpenAIServer,
                                                     analyzer: OpenAIAnalyzer) -> None:
    server.fail(429, headers={"Retry-After": "7"}, message="Rate limit reached")
    with pytest.raises(RateLimited) as caught:
        analyzer.sentiment(["x"])
    assert caught.value.retry_after == 7
    assert caught.value.is_retriable


def test_429_with_retry_after_date(server: FakeOpenAIServer, analyzer: OpenAIAnalyzer) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.fail(429, path=EMBEDDINGS_PATH, headers={"Retry-After": when})
    with pytest.raises(RateLimited) as caught:
        analyzer.embed(["x"])
    assert caught.value.retry_after is not None and 25 <= caught.value.retry_after <= 31


def test_retry_after_ms_is_preferred(server: FakeOpenAIServer, analyzer: OpenAIAnalyzer) -> None:
    server.fail(429, headers={"Retry-After": "2", "Retry-After-Ms": "1500"})
    with pytest.raises(RateLimited) as caught:
        analyzer.sentiment(["x"])
    assert caught.value.retry_after == 1.5


def test_429_out_of_quota_is_a_configuration_error(server: FakeOpenAIServer,
                                                  analyzer: OpenAIAnalyzer) -> None:
    server.fail(429, code="insufficient_quota", message="You exceeded your current quota")
    with pytest.raises(ConfigurationError, match="insufficient_quota"):
        analyzer.sentiment(["x"])


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, TransientError), (503, TransientError), (400, PermanentError),
     (401, ConfigurationError), (403, ConfigurationError), (404, ConfigurationError),
     (422, PermanentError)],
)
def test_status_mapping(server: FakeOpenAIServer, analyzer: OpenAIAnalyzer, status: int,
                        expected: type[Exception]) -> None:
    server.fail(status)
    with pytest.raises(expected) as caught:
        analyzer.embed(["x"])
    assert type(caught.value) is expected
    assert "test-key" not in str(caught.value)


def test_a_timeout_is_transient(server: FakeOpenAIServer) -> None:
    analyzer = OpenAIAnalyzer(api_key="k", base_url=server.base_url, timeout_s=0.2, max_retries=0)
    server.answer_chat(sentiment_json((0, "neutral", 0.0, 0.5)), delay=1.0)

    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        analyzer.sentiment(["slow"])
    assert time.monotonic() - started < 1.0


def test_an_unreachable_server_is_transient() -> None:
    with FakeOpenAIServer() as gone:
        url = gone.base_url
    analyzer = OpenAIAnalyzer(api_key="k", base_url=url, timeout_s=1.0, max_retries=0)
    with pytest.raises(TransientError, match="cannot reach"):
        analyzer.embed(["x"])


def test_sdk_retries_follow_max_retries(server: FakeOpenAIServer) -> None:
    analyzer = OpenAIAnalyzer(api_key="k", base_url=server.base_url, max_retries=1,
                              embedding_dimensions=16)
    server.fail(500, path=EMBEDDINGS_PATH, headers={"Retry-After-Ms": "10"})

    assert len(analyzer.embed(["x"])) == 1  # the fake's default answer on the retry
    assert len(server.embedding_requests) == 2


def test_sdk_retries_leave_rate_limits_to_the_ledger(server: FakeOpenAIServer) -> None:
    analyzer = OpenAIAnalyzer(api_key="k", base_url=server.base_url, max_retries=2)
    server.fail(429, headers={"Retry-After": "7"})

    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        analyzer.embed(["x"])
    assert caught.value.retry_after == 7
    assert len(server.requests) == 1 and time.monotonic() - started < 2


# -- construction --------------------------------------------------------------------


def test_base_url_falls_back_to_openai_base_url(server: FakeOpenAIServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    analyzer = OpenAIAnalyzer(api_key="k", embedding_dimensions=16, max_retries=0)
    assert len(analyzer.embed(["x"])[0]) == 16
    assert len(server.embedding_requests) == 1


def test_embedding_model_names_its_dimensions(analyzer: OpenAIAnalyzer) -> None:
    assert analyzer.model == "gpt-test"
    assert analyzer.embedding_model == "embed-test@16"
    assert OpenAIAnalyzer(embedding_dimensions=None).embedding_model == "text-embedding-3-small"


def test_build_analyzer_picks_openai_when_a_key_is_set(server: FakeOpenAIServer) -> None:
    settings = Settings(openai_api_key=SecretStr("k"), openai_base_url=server.base_url,
                        openai_model="gpt-x", openai_embedding_dimensions=16,
                        openai_max_retries=0, _env_file=None)  # type: ignore[call-arg]
    analyzer = build_analyzer(settings)
    assert isinstance(analyzer, OpenAIAnalyzer) and analyzer.model == "gpt-x"
    assert len(analyzer.embed(["x"])[0]) == 16
    assert server.embedding_requests[0].header("authorization") == "Bearer k"


def test_build_analyzer_falls_back_to_offline_without_a_key() -> None:
    offline = pytest.importorskip("shared.analyzers.offline")
    settings = Settings(openai_api_key=None, _env_file=None)  # type: ignore[call-arg]
    assert isinstance(build_analyzer(settings), offline.OfflineAnalyzer)


def test_importing_the_module_neither_imports_openai_nor_builds_a_client() -> None:
    code = ("import sys, shared.analyzers, shared.analyzers.openai_analyzer; "
            "sys.exit('openai' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
