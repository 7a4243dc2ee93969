"""How the dashboard server learns that events arrived, to wake its pages.

Three sources, best first (``DASHBOARD_LIVE=auto``): a Supabase Realtime
subscription (``postgres_changes`` INSERT on ``public.events``) when the
Supabase URL and a key are set, LISTEN ``signalsloop_events`` on a direct
connection otherwise, and polling when neither works (the plan's fallback):
a cheap look at the newest events on the direct connection, or, on the
Supabase data path without one, a wake-up every second after which each
page re-reads through PostgREST.
A signal carries no data: each page re-reads under its own person's RLS, so
the source may use a key no page ever sees.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger("signalsloop.dashboard.feed")
CHANNEL = "signalsloop_events"
Wake = Callable[[], None]


class Feed:
    """Fan-out of wake-ups to the pages' callbacks (any thread may call ``signal``)."""

    def __init__(self) -> None:
        self._wakers: set[Wake] = set()
        self._lock = threading.Lock()
        self.source = "starting"
        self.signals = 0
        self.last_signal_at: float | None = None

    def subscribe(self, wake: Wake) -> None:
        with self._lock:
            self._wakers.add(wake)

    def unsubscribe(self, wake: Wake) -> None:
        with self._lock:
            self._wakers.discard(wake)

    def signal(self) -> None:
        self.signals += 1
        self.last_signal_at = time.time()
        with self._lock:
            wakers = list(self._wakers)
        for wake in wakers:
            wake()


class Source:
    """A thread feeding ``feed``; ``failed`` is set when it gives up."""

    name = "source"

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.stopping = threading.Event()
        self.failed = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> Source:
        self.thread = threading.Thread(target=self._run, name=f"dashboard-{self.name}", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def _run(self) -> None:
        raise NotImplementedError


class ListenSource(Source):
    """LISTEN on a direct connection; reconnects after a lost connection."""

    name = "listen"

    def __init__(self, feed: Feed, url: str) -> None:
        super().__init__(feed)
        self.url = url

    def _run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"listen {CHANNEL}")
                    self.feed.source, failures = "listen", 0
                    while not self.stopping.is_set():
                        if any(True for _ in conn.notifies(timeout=0.5, stop_after=1)):
                            self.feed.signal()
            except psycopg.Error as exc:
                failures += 1
                log.warning("LISTEN %s lost (%s); retrying", CHANNEL, exc)
                if failures >= 3:
                    self.failed.set()
                    return
                time.sleep(min(5.0, 0.5 * 2 ** failures))


class PollSource(Source):
    """Every ``interval`` seconds, a cheap look at the newest events (the index
    on created_at): a change in what the last minute holds wakes the pages."""

    name = "poll"

    def __init__(self, feed: Feed, url: str, interval: float = 0.5) -> None:
        super().__init__(feed)
        self.url, self.interval = url, interval

    def _run(self) -> None:
        seen: Any = None
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    seen = self._look(conn) if seen is None else seen
                    self.feed.source = "poll"
                    while not self.stopping.wait(self.interval):
                        now = self._look(conn)
                        if now != seen:
                            self.feed.signal()
                        seen = now
            except psycopg.Error as exc:
                log.warning("polling events failed (%s); retrying", exc)
                self.stopping.wait(2)


    @staticmethod
    def _look(conn: psycopg.Connection[Any]) -> Any:
        return conn.execute("select count(*), max(created_at) from public.events "
                            "where created_at > now() - interval '1 minute'").fetchone()


class TickSource(Source):
    """Without a direct connection and without Realtime (the Supabase data
    path, Realtime down): a wake-up every ``interval`` seconds, and each open
    page re-reads what is new through PostgREST under its own token."""

    name = "poll"

    def __init__(self, feed: Feed, interval: float = 1.0) -> None:
        super().__init__(feed)
        self.interval = interval

    def _run(self) -> None:
        self.feed.source = "poll"
        while not self.stopping.wait(self.interval):
            self.feed.signal()


class RealtimeSource(Source):
    """Supabase Realtime ``postgres_changes`` on ``events``, in its own event loop."""

    name = "realtime"

    def __init__(self, feed: Feed, supabase_url: str, key: str, join_timeout: float = 5.0) -> None:
        super().__init__(feed)
        self.url = supabase_url.rstrip("/") + "/realtime/v1"
        self.key, self.join_timeout = key, join_timeout
        self.joined = threading.Event()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # the server is down or refused us: the caller falls back
            log.warning("Supabase Realtime unavailable (%s)", exc)
        self.failed.set()

    async def _main(self) -> None:
        from realtime import AsyncRealtimeClient, RealtimePostgresChangesListenEvent, RealtimeSubscribeStates

        client = AsyncRealtimeClient(self.url, self.key, max_retries=2, initial_backoff=0.2, auto_reconnect=False)
        await asyncio.wait_for(client.connect(), self.join_timeout)
        channel = client.channel("signalsloop-dashboard")
        channel.on_postgres_changes(RealtimePostgresChangesListenEvent.Insert, schema="public", table="events",
                                    callback=lambda _: self.feed.signal())
        states: list[Any] = []
        await asyncio.wait_for(channel.subscribe(lambda state, err: states.append(state)), self.join_timeout)
        if RealtimeSubscribeStates.SUBSCRIBED not in states:
            raise ConnectionError(f"join refused: {states}")
        self.feed.source = "realtime"
        self.joined.set()
        while not self.stopping.is_set():
            await asyncio.sleep(0.2)
            if not client.is_connected:
                raise ConnectionError("connection closed")
        await client.close()


class LiveUpdates:
    """Starts the best source and falls back to polling when it fails."""

    def __init__(self, feed: Feed, *, database_url: str | None, mode: str = "auto",
                 supabase_url: str | None = None, supabase_key: str | None = None) -> None:
        self.feed, self.database_url, self.mode = feed, database_url, mode
        self.supabase_url, self.supabase_key = supabase_url, supabase_key
        self.active: Source | None = None
        self.started_with: Source | None = None  # the first choice, kept after a fallback
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self.active = self.started_with = self._first().start()
        self._watch = threading.Thread(target=self._fallback, name="dashboard-feed-watch", daemon=True)
        self._watch.start()

    def _first(self) -> Source:
        use_realtime = self.mode == "realtime" or (self.mode == "auto" and self.supabase_url and self.supabase_key)
        if use_realtime and self.supabase_url and self.supabase_key:
            return RealtimeSource(self.feed, self.supabase_url, self.supabase_key)
        if self.database_url is None:
            return TickSource(self.feed)
        if self.mode in ("auto", "listen"):
            return ListenSource(self.feed, self.database_url)
        return PollSource(self.feed, self.database_url)

    def _fallback(self) -> None:
        source = self.active
        while source is not None and not source.stopping.is_set():
            if source.failed.wait(0.5) and not isinstance(source, PollSource | TickSource):
                log.warning("live updates: %s failed, falling back to polling", source.name)
                source = self.active = (PollSource(self.feed, self.database_url) if self.database_url
                                        else TickSource(self.feed)).start()
                return

    def stop(self) -> None:
        if self.active:
            self.active.stop()
