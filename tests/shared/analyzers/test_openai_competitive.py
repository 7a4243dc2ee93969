"""Competitor signals from OpenAI against the fake server: one strict
structured call, answers checked against the mentions asked about, malformed
answers re-asked once and then a permanent error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.analyzers.openai_analyzer import OpenAIAnalyzer
from shared.errors import PermanentError, RateLimited
from shared.mentions import find_mentions
from tests.fakes.openai_server import FakeOpenAIServer

CATALOGUE = [{"id": "a", "name": "Asana", "aliases": [], "domains": []},
             {"id": "n", "name": "Notion", "aliases": ["Notion HQ"], "domains": []}]
TEXT = "We are leaving for Asana. Notion HQ is fine, it has offline mode."
MENTIONS = find_mentions(TEXT, CATALOGUE)


def answer(*items: dict[str, Any]) -> str:
    return json.dumps({"competitors": list(items)})


def item(name: str, sentiment: str = "neutral", switching: bool = False, features: list[str] = ()) -> dict[str, Any]:
    return {"competitor": name, "sentiment": sentiment, "switching_intent": switching, "features": list(features)}


def test_one_structured_call_gives_a_signal_per_mention_in_order(server: FakeOpenAIServer,
                                                                 analyzer: OpenAIAnalyzer) -> None:
    server.answer_chat(answer(item("notion", "positive", features=["offline mode", " ", "offline mode"]),
                              item("Asana", "negative", True), item("Trello", "negative", True)))
    signals = analyzer.competitor_signals(TEXT, MENTIONS)
    assert [(s.competitor, s.sentiment, s.switching_intent, s.features, s.model) for s in signals] == [
        ("Asana", "negative", True, [], "gpt-test"), ("Notion", "positive", False, ["offline mode"], "gpt-test")]
    (request,) = server.chat_requests
    body = request.json
    assert body["response_format"]["json_schema"]["name"] == "CompetitorAnswer"
    assert body["response_format"]["json_schema"]["strict"] is True
    user = body["messages"][-1]["content"]
    assert TEXT in user and '"written_as": "Notion HQ"' in user


def test_no_mentions_make_no_call(server: FakeOpenAIServer, analyzer: OpenAIAnalyzer) -> None:
    assert analyzer.competitor_signals("nothing here", []) == []
    assert server.requests == []


@pytest.mark.parametrize(
    "malformed",
    [
        pytest.param("not JSON at all", id="not JSON"),
        pytest.param(json.dumps({"competitors": [{"competitor": "Asana"}]}), id="fields missing"),
        pytest.param(answer(item("Asana", "furious"), item("Notion")), id="a label outside the schema"),
        pytest.param(answer(item("Asana")), id="a competitor left out"),
        pytest.param(json.dumps({"competitors": "Asana"}), id="not a list"),
    ],
)
def test_a_malformed_answer_is_reasked_once_then_fails_permanently(malformed: str, server: FakeOpenAIServer,
                                                                    analyzer: OpenAIAnalyzer) -> None:
    server.answer_chat(malformed)
    server.answer_chat(answer(item("Asana", switching=True), item("Notion")))
    signals = analyzer.competitor_signals(TEXT, MENTIONS)
    assert [s.switching_intent for s in signals] == [True, False]
    assert len(server.chat_requests) == 2
    assert "rejected" in server.chat_requests[1].json["messages"][-1]["content"]

    server.answer_chat(malformed)
    server.answer_chat(malformed)
    with pytest.raises(PermanentError, match="malformed CompetitorAnswer"):
        analyzer.competitor_signals(TEXT, MENTIONS)


def test_a_refusal_and_a_rate_limit_map_onto_the_error_taxonomy(server: FakeOpenAIServer,
                                                                analyzer: OpenAIAnalyzer) -> None:
    server.refuse()
    with pytest.raises(PermanentError, match="refused"):
        analyzer.competitor_signals(TEXT, MENTIONS)
    server.fail(429, headers={"retry-after": "3"})
    with pytest.raises(RateLimited) as raised:
        analyzer.competitor_signals(TEXT, MENTIONS)
    assert raised.value.retry_after == 3
