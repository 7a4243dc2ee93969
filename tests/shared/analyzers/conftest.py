"""Fixtures for the analyzer tests: a fake OpenAI server and an
OpenAIAnalyzer pointed at it (the real SDK, the real wire)."""

from collections.abc import Iterator

import pytest

from shared.analyzers.openai_analyzer import OpenAIAnalyzer
from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture(autouse=True)
def _loopback_only(no_proxy: None) -> None:
    """Every test here talks to a fake server on loopback."""


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
def analyzer(server: FakeOpenAIServer) -> OpenAIAnalyzer:
    return OpenAIAnalyzer(api_key="test-key", base_url=server.base_url, model="gpt-test",
                          embedding_model="embed-test", embedding_dimensions=16,
                          timeout_s=2.0, max_retries=0)
