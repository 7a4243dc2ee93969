"""Agent health alerts end to end on the real database: the sentiment agent
fails on purpose through its real runtime, the periodic evaluation raises one
agent.alert_raised, the agent recovers and one agent.alert_resolved follows,
and the notify agent sends exactly those two to a fake Slack."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.errors import TransientError
from shared.events import EventType
from shared.notifiers import build_notifier
from shared.ports import Sentiment
from shared.postgres_store import PostgresStore
from shared.settings import Settings
from tests.fakes.slack_server import FakeSlackServer
from tests.functions.conftest import Pipeline, rows
from tests.helpers import Seed


class FlakyAnalyzer:
    """The real offline analyzer, failing while ``broken`` is set."""

    def __init__(self, real: OfflineAnalyzer) -> None:
        self.real, self.broken = real, True

    @property
    def model(self) -> str:
        return self.real.model

    def sentiment(self, texts: Sequence[str]) -> list[Sentiment]:
        if self.broken:
            raise TransientError("analyzer unavailable (on purpose)")
        return self.real.sentiment(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def slack(no_proxy: None) -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as fake:
        yield fake


def periodic(seed: Seed) -> dict[str, Any]:
    return dict(seed.conn.execute("select run_periodic() as r").fetchone()["r"])


def test_a_failing_agent_raises_one_alert_and_resolves_it_once(store: PostgresStore, seed: Seed,
                                                               analyzer: OfflineAnalyzer,
                                                               slack: FakeSlackServer) -> None:
    flaky = FlakyAnalyzer(analyzer)
    settings = Settings(slack_base_url=slack.api_base_url, slack_bot_token=None, slack_webhook_url=None)
    pipeline = Pipeline(store, seed, flaky, lambda project: build_notifier(project, settings))  # type: ignore[arg-type]
    seed.configure(alert_interval_seconds=0, alert_min_attempts=3, alert_sample_size=3, backoff_base_ms=0)
    project = seed.project()
    seed.conn.execute("insert into project_integrations (project_id, slack_bot_token, slack_channel) "
                      "values (%s, 'xoxb-test', '#ops')", (project,))
    for n in range(3):
        seed.post(project, f"Feedback {n}")

    assert {r["status"] for r in pipeline.run("sentiment", EventType.FEEDBACK_CREATED)} == {"failed"}
    assert periodic(seed)["alerts"] == {"raised": 1, "resolved": 0}
    assert periodic(seed)["alerts"] == {"raised": 0, "resolved": 0}, "one alert per incident"
    (raised,) = seed.events(EventType.AGENT_ALERT_RAISED)
    assert raised["payload"]["agent"] == "sentiment" and "failure_rate" in raised["payload"]["reasons"]
    assert pipeline.deliver("notify", raised)["status"] == "succeeded"

    flaky.broken = False
    assert {r["status"] for r in pipeline.run("sentiment", EventType.FEEDBACK_CREATED)} == {"succeeded"}
    assert periodic(seed)["alerts"] == {"raised": 0, "resolved": 1}
    assert periodic(seed)["alerts"] == {"raised": 0, "resolved": 0}
    (resolved,) = seed.events(EventType.AGENT_ALERT_RESOLVED)
    assert pipeline.deliver("notify", resolved)["status"] == "succeeded"
    assert pipeline.deliver("notify", resolved)["status"] == "finished"

    texts = [m["text"] for m in slack.posted]
    assert len(texts) == 2
    assert "sentiment needs attention: failure rate" in texts[0] and "sentiment recovered" in texts[1]
    (alert,) = rows(seed, "select * from agent_alerts")
    assert alert["resolved_at"] is not None and alert["resolved_event_id"] == resolved["id"]
