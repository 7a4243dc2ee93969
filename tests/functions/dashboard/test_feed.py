"""How the dashboard server learns of new events: Supabase Realtime (against
a fake Realtime server at its websocket boundary), LISTEN on the real
database, and the fallback to polling when Realtime is down."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from functions.dashboard.feed import Feed, ListenSource, LiveUpdates, PollSource, RealtimeSource
from signalsloop.local.stack import free_port
from tests.fakes.realtime_server import FakeRealtimeServer
from tests.helpers import Seed
from tests.signalsloop.stack_helpers import wait_for


class Counter:
    def __init__(self, feed: Feed) -> None:
        self.n = 0
        self.woken = threading.Event()
        feed.subscribe(self.wake)

    def wake(self) -> None:
        self.n += 1
        self.woken.set()


@pytest.fixture
def realtime() -> Iterator[FakeRealtimeServer]:
    with FakeRealtimeServer() as server:
        yield server


def test_realtime_joins_the_events_channel_and_wakes_pages(realtime: FakeRealtimeServer) -> None:
    feed = Feed()
    pages = Counter(feed)
    source = RealtimeSource(feed, realtime.url, "service-key").start()
    try:
        assert source.joined.wait(10), "joined the channel"
        (join,) = realtime.joins
        assert join["payload"]["config"]["postgres_changes"] == [
            {"event": "INSERT", "schema": "public", "table": "events"}]
        assert "apikey=service-key" in realtime.paths[0] and realtime.paths[0].startswith("/realtime/v1/websocket")
        assert feed.source == "realtime" and pages.n == 0
        realtime.insert("events", {"id": "00000000-0000-4000-8000-000000000001", "type": "feedback.created"})
        assert pages.woken.wait(5) and pages.n == 1
    finally:
        source.stop()


def test_realtime_down_falls_back_to_polling(db_url: str, seed: Seed) -> None:
    feed = Feed()
    pages = Counter(feed)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    live = LiveUpdates(feed, database_url=db_url, supabase_url=down, supabase_key="key")
    live.start()
    try:
        assert isinstance(live.started_with, RealtimeSource), "Supabase settings choose Realtime first"
        wait_for(lambda: isinstance(live.active, PollSource) and feed.source == "poll", 30, "the fallback")
        project = seed.project()
        seed.post(project, "Seen by polling")
        assert pages.woken.wait(5), "a new event woke the pages through polling"
    finally:
        live.stop()


def test_listen_wakes_pages_when_events_commit(db_url: str, seed: Seed) -> None:
    feed = Feed()
    pages = Counter(feed)
    source = ListenSource(feed, db_url).start()
    try:
        wait_for(lambda: feed.source == "listen", 10, "LISTEN")
        seed.post(seed.project(), "Seen by LISTEN")
        assert pages.woken.wait(5)
        assert not source.failed.is_set()
    finally:
        source.stop()


def test_without_supabase_settings_auto_listens(db_url: str) -> None:
    live = LiveUpdates(Feed(), database_url=db_url)
    assert isinstance(live._first(), ListenSource)
    assert isinstance(LiveUpdates(Feed(), database_url=db_url, mode="poll")._first(), PollSource)
