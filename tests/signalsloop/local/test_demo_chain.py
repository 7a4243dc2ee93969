"""The demo's chain from a post to a stall alert, on the real database with the
real agents (tests/functions/conftest.py's Pipeline): posts become a theme and
a drafted spec, the team approves it, the clock moves on, the roadmap item
stalls and notify records the alert; the chain links each step to the next."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from shared.analyzers.offline import OfflineAnalyzer
from shared.events import EventType
from shared.postgres_store import PostgresStore
from signalsloop.local.demo_agents import chain_to_stall_alert, publish_clock_tick
from signalsloop.local.scenario import DARK_MODE
from tests.functions.conftest import Pipeline
from tests.helpers import Seed


@pytest.fixture
def pipeline(db_url: str, seed: Seed) -> Iterator[Pipeline]:
    store = PostgresStore(db_url, max_size=4)
    yield Pipeline(store, seed, OfflineAnalyzer())
    store.close()


def deliver_all(pipeline: Pipeline, agent: str, event_type: str) -> None:
    for reply in pipeline.run(agent, event_type):
        assert reply["status"] in ("succeeded", "finished"), reply


def test_the_chain_runs_from_a_post_to_the_stall_alert(pipeline: Pipeline, seed: Seed) -> None:
    since = seed.conn.execute("select now() as t").fetchone()["t"]
    project = seed.project(owner=seed.user(), theme_threshold=3, roadmap_stall_days=14)
    assert chain_to_stall_alert(seed.conn, since) == [], "nothing stalled yet"
    for item in DARK_MODE[:8]:  # more than the threshold needs, however the themes cluster
        seed.post(project, item.title, item.body)
    deliver_all(pipeline, "sentiment", EventType.FEEDBACK_CREATED)
    deliver_all(pipeline, "theme", EventType.SENTIMENT_ANALYZED)
    deliver_all(pipeline, "spec_writer", EventType.THEME_THRESHOLD_REACHED)
    assert seed.conn.execute("update specs set status = 'approved' where project_id = %s and source = 'agent'",
                             (project,)).rowcount == 1
    deliver_all(pipeline, "roadmap", EventType.SPEC_APPROVED)
    publish_clock_tick(seed.conn, project, since + timedelta(days=15))
    deliver_all(pipeline, "roadmap", EventType.CLOCK_TICK)
    deliver_all(pipeline, "notify", EventType.ROADMAP_STALLED)

    chain = chain_to_stall_alert(seed.conn, since)

    assert [s["type"] for s in chain] == ["feedback.created", "sentiment.analyzed", "theme.threshold_reached",
                                          "spec.auto_drafted", "spec.approved", "roadmap.updated", "clock.tick",
                                          "roadmap.stalled", "notification"]
    by_id: dict[str, Any] = {str(e["id"]): e for e in seed.events()}
    events = [by_id[s["id"]] for s in chain[:-1]]
    causal = [*pairwise(events[:4]), (events[4], events[5]), (events[6], events[7])]  # the approval starts anew
    for cause, effect in causal:
        assert effect["metadata"]["causation_id"] == str(cause["id"]), (cause["type"], effect["type"])
    [spec] = seed.conn.execute("select id from specs").fetchall()
    assert {e["aggregate_id"] for e in events[3:6]} | {events[7]["aggregate_id"]} == {spec["id"]}
    assert events[4]["metadata"]["producer"] == "db.specs" and "approved" in chain[4]["note"]
    assert chain[7]["note"].startswith("no_progress")
    assert chain[-1]["producer"] == "notify" and "stalled" in chain[-1]["note"]
    assert chain[-1]["note"].startswith("high, unconfigured")
