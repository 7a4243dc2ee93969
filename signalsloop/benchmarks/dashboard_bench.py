"""``signalsloop bench --dashboard``: the dashboard in a real headless Chromium.

Prints one JSON object:

- ``commit_to_dom_ms``: from a post's commit to its row in the page's DOM
  (a MutationObserver stamps each row), p50/p95 over ``--posts`` posts;
- ``stream``: during a 200 events/s stream, the page's main-thread lag
  (a 50 ms timer's drift) and commit-to-DOM of the streamed events;
- ``first_load_ms``: a fresh page of /events, from its navigation start to
  its first row in the DOM (the page's own clock, as the browser's paint
  timings count), with ``--dashboard-events`` (default 1,000,000) events in
  the table: the median of five (``first_load_samples_ms``);
  ``load_event_ms`` to the page's load event (fonts included);
  ``first_load_wall_ms`` as the driving script sees it (opening the tab and
  the browser's own round trips included); then the next (keyset) page.

Runs on its own embedded PostgreSQL with the migrations and the dashboard
process (no agent functions: the figures are the dashboard's own path).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg

from signalsloop.db import migrate, start_embedded, stop_embedded
from signalsloop.local.browser import INSTALL_HINT, chromium, chromium_path
from signalsloop.local.dashboard_process import DashboardProcess

OBSERVER = """() => {
  window.__seen = {}; window.__lags = [];
  new MutationObserver(ms => { const t = Date.now();
    for (const m of ms) for (const n of m.addedNodes)
      if (n.nodeType === 1) for (const r of [n, ...n.querySelectorAll('tr[data-event-id]')])
        if (r.dataset && r.dataset.eventId && !(r.dataset.eventId in window.__seen))
          window.__seen[r.dataset.eventId] = t;
  }).observe(document.body, {childList: true, subtree: true});
  let last = performance.now();
  setInterval(() => { const now = performance.now(); window.__lags.push(now - last - 50); last = now; }, 50);
}"""


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    q = statistics.quantiles(values, n=100) if len(values) > 1 else [values[0]] * 99
    return {"n": len(values), "p50": round(q[49], 1), "p95": round(q[94], 1), "max": round(max(values), 1)}


def _project(conn: psycopg.Connection[Any]) -> Any:
    user = conn.execute("insert into auth.users (email) values (%s) returning id",
                        (f"bench-{uuid4().hex[:8]}@example.com",)).fetchone()[0]  # type: ignore[index]
    return conn.execute("insert into projects (name, slug, owner_id) values ('Bench', %s, %s) returning id",
                        (f"bench-{uuid4().hex[:8]}", user)).fetchone()[0]  # type: ignore[index]


def commit_to_dom(page: Any, url: str, posts: int, interval: float = 0.2) -> dict[str, Any]:
    committed: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        project = _project(conn)
        for i in range(posts):
            with conn.transaction():
                post = conn.execute("insert into posts (project_id, title) values (%s, %s) returning id",
                                    (project, f"Bench post {i}")).fetchone()[0]  # type: ignore[index]
                event = conn.execute("select id from events where aggregate_id = %s", (post,)).fetchone()
            committed[str(event[0])] = time.time() * 1000  # type: ignore[index]
            time.sleep(interval)
    seen = _wait_seen(page, set(committed))
    return percentiles([seen[k] - t for k, t in committed.items() if k in seen]) | {
        "missing": len(set(committed) - set(seen))}


def _wait_seen(page: Any, ids: set[str], timeout: float = 10) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, float] = page.evaluate("() => window.__seen || {}")
        if ids <= set(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


def stream(page: Any, url: str, rate: float = 200, seconds: float = 10) -> dict[str, Any]:
    """Insert ``rate`` events/s for ``seconds`` (one writer, one event per commit)."""
    committed: dict[str, float] = {}
    project = None
    with psycopg.connect(url, autocommit=True) as conn:
        project = _project(conn)
    page.evaluate("() => { window.__lags = []; }")

    def write() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            start = time.perf_counter()
            for i in range(int(rate * seconds)):
                eid = uuid4()
                conn.execute("insert into events (id, type, aggregate_type, aggregate_id, metadata) values "
                             "(%s, 'bench.streamed', 'bench', %s, jsonb_build_object('project_id', %s::text))",
                             (eid, uuid4(), str(project)))
                committed[str(eid)] = time.time() * 1000
                delay = start + (i + 1) / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)

    writer = threading.Thread(target=write)
    started = time.perf_counter()
    writer.start()
    writer.join()
    achieved = len(committed) / (time.perf_counter() - started)
    time.sleep(2)
    seen: dict[str, float] = page.evaluate("() => window.__seen || {}")
    lags: list[float] = page.evaluate("() => window.__lags || []")
    rows = page.locator("tr[data-event-id]").count()
    return {"offered_per_s": rate, "achieved_per_s": round(achieved, 1), "rows_in_dom": rows,
            "main_thread_lag_ms": percentiles([max(0.0, x) for x in lags]),
            "commit_to_dom_ms": percentiles([seen[k] - t for k, t in committed.items() if k in seen]),
            "shown_of_streamed": sum(1 for k in committed if k in seen)}


def load_events(url: str, n: int) -> float:
    """Bulk-load ``n`` events over 20 projects, triggers off (no fan-out): the table as a busy year leaves it."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute("""insert into events (type, aggregate_type, aggregate_id, metadata, created_at)
            select (array['feedback.created', 'sentiment.analyzed', 'priority.calculated',
                          'notification.sent'])[1 + i %% 4],
                   'feedback', gen_random_uuid(),
                   jsonb_build_object('project_id', md5((i %% 20)::text)::uuid, 'producer', 'bench'),
                   now() - make_interval(secs => (%s - i) * 0.5)
              from generate_series(1, %s) i""", (n, n))
        # The table at rest, as a year of events leaves it: vacuumed (else
        # autovacuum works through the million new rows during the page loads)
        # and written out (else the checkpoint does).
        conn.execute("vacuum (analyze) events")
        conn.execute("checkpoint")
    return round(time.perf_counter() - started, 1)


# Stamps, on the page's own clock (0 = navigation start, as the browser's
# paint and largest-contentful-paint timings count), when the first event row
# enters the DOM.
FIRST_ROW = """
new MutationObserver((_, o) => { if (document.querySelector('tr[data-event-id]')) {
  window.__firstRow = performance.now(); o.disconnect(); } }).observe(document, {childList: true, subtree: true});
"""


def first_load(context: Any, base: str, samples: int = 5) -> dict[str, Any]:
    """A fresh /events page until its first row, ``samples`` times (a second
    apart; each a new page, as a person opening the dashboard); the median is
    the figure, every sample is printed. Then the next (keyset) page."""
    loads, walls, complete = [], [], []
    context.add_init_script(FIRST_ROW)
    for _ in range(samples):
        page = context.new_page()
        started = time.perf_counter()
        page.goto(base + "/events", wait_until="commit")
        page.wait_for_selector("tr[data-event-id]")
        walls.append(round((time.perf_counter() - started) * 1000, 1))
        page.wait_for_load_state("load")  # fonts and the rest: the rows are already shown
        complete.append(round(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"), 1))
        loads.append(round(page.evaluate("window.__firstRow"), 1))
        page.close()
        time.sleep(1)
    page = context.new_page()
    page.goto(base + "/events")
    page.wait_for_selector("tr[data-event-id]")
    first = page.locator("tr[data-event-id]").first.get_attribute("data-event-id")
    started = time.perf_counter()
    page.locator("[data-action=older]").click()
    page.wait_for_function(f"() => document.querySelector('tr[data-event-id]').dataset.eventId !== '{first}'")
    older = (time.perf_counter() - started) * 1000
    page.close()
    return {"first_load_ms": statistics.median(loads), "first_load_samples_ms": loads,
            "load_event_ms": statistics.median(complete), "first_load_wall_ms": statistics.median(walls),
            "older_page_ms": round(older, 1)}


def main(args: Any) -> int:
    if chromium_path() is None:
        print(json.dumps({"dashboard": "skipped", "reason": INSTALL_HINT}))
        return 0
    with tempfile.TemporaryDirectory(prefix="signalsloop-dashboard-bench-") as tmp:
        url = start_embedded(Path(tmp) / "pg", cleanup="delete")
        try:
            migrate(url)
            result = run(url, Path(tmp), posts=args.posts, events=args.dashboard_events)
        finally:
            stop_embedded()
    print(json.dumps(result))
    return 0


def run(url: str, tmp: Path, *, posts: int, events: int) -> dict[str, Any]:
    import os

    dashboard = DashboardProcess({**os.environ, "DATABASE_URL": url}, (), tmp / "dashboard.log")
    try:
        signed_in = dashboard.start()
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(signed_in)
            page.wait_for_url("**/events")
            page.wait_for_selector("[data-events-status]")
            page.wait_for_load_state("networkidle")
            page.evaluate(OBSERVER)
            result: dict[str, Any] = {"live_source": page.locator("[data-live-source]").inner_text()}
            result["commit_to_dom_ms"] = commit_to_dom(page, url, posts)
            result["stream"] = stream(page, url)
            page.close()
            result["loaded_events"] = events
            result["load_s"] = load_events(url, events)
            result.update(first_load(context, dashboard.base_url))
            context.close()
        return result
    finally:
        dashboard.stop()
