"""``make bench``: the local stack under load, measured from the ledger.

Inserts ``--events`` feedback posts (a steady stream from a few writers, as a
busy web app would), waits until every delivery is finished, and prints one
JSON object: reaction and processing latency percentiles, sustained events
per second with the plan's subscriptions, the most agents working on one
event at once, and lost / duplicated effects (both must be 0).

``--doorbell pg_net`` measures the production shape: pg_net rings the
functions (the real extension where the database has it, else the stand-in
that behaves as it does) and ``run_periodic()`` runs every 5 s as pg_cron
would; no relay. The JSON says which doorbell rang.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

from signalsloop.local import pgnet_doorbell
from signalsloop.local.stack import Stack, throwaway_stack
from signalsloop.operations import metrics

SUBJECTS = ["dark mode", "CSV export", "Google login", "mobile app speed", "calendar sync", "recurring tasks",
            "Slack integration", "offline mode", "file attachments", "keyboard shortcuts"]
MOODS = ["Please add {s}, it would help a lot.", "{s} is broken again and I am frustrated.",
         "I love the new {s}, great work!", "Is {s} on the roadmap?", "{s} keeps failing since the update."]

LOST_SQL = """
select (select count(*) from public.event_deliveries where event_created_at >= %(since)s
           and status <> 'succeeded')
     + (select count(*) from public.posts p where p.project_id = %(project)s
           and not exists (select 1 from public.sentiment_analysis s where s.feedback_id = p.id))
     + (select count(*) from public.posts p where p.project_id = %(project)s
           and not exists (select 1 from public.priority_scores s where s.feedback_id = p.id))
"""
DUPLICATED_SQL = """
select coalesce(sum(n - 1), 0) from (
  select count(*) as n from public.events
   where created_at >= %(since)s and metadata ->> 'causation_id' is not null
   group by metadata ->> 'causation_id', metadata ->> 'producer', type
   having count(*) > 1) d
"""


def _writer(url: str, project: UUID, user: UUID, count: int, seed: int, interval: float) -> None:
    """Insert ``count`` posts, one every ``interval`` seconds (0: as fast as possible)."""
    rnd = random.Random(seed)
    start = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(count):
            subject, mood = rnd.choice(SUBJECTS), rnd.choice(MOODS)
            conn.execute("insert into public.posts (project_id, author_id, title, body) values (%s, %s, %s, %s)",
                         (project, user, mood.format(s=subject).capitalize()[:80], f"About {subject}. {uuid4().hex}"))
            delay = start + (i + 1) * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)


def run(stack: Stack, events: int, writers: int = 4, rate: float | None = None) -> dict[str, Any]:
    """Post ``events`` feedback items, at ``rate`` per second in all (None: a burst)."""
    assert stack.database_url
    url = stack.database_url
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute("insert into auth.users (email) values (%s) returning id",
                            (f"bench-{uuid4().hex[:8]}@example.com",)).fetchone()[0]  # type: ignore[index]
        project = conn.execute("insert into projects (name, slug, owner_id, settings) values "
                               "('Bench', %s, %s, %s) returning id",
                               (f"bench-{uuid4().hex[:8]}", user, Jsonb({"theme_threshold": 10_000}))
                               ).fetchone()[0]  # type: ignore[index]
        since = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        first_request = pgnet_doorbell.last_request(conn) if stack.pg_net is not None else 0
    started = time.perf_counter()
    per = [events // writers + (1 if i < events % writers else 0) for i in range(writers)]
    interval = writers / rate if rate else 0.0
    threads = [threading.Thread(target=_writer, args=(url, project, user, n, i, interval))
               for i, n in enumerate(per)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stack.wait_settled(timeout=600)
    elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        counts = metrics.counts(conn, since)
        total_events = sum(counts["events_by_type"].values())
        lost = conn.execute(LOST_SQL, {"since": since, "project": project}).fetchone()[0]  # type: ignore[index]
        duplicated = conn.execute(DUPLICATED_SQL, {"since": since}).fetchone()[0]  # type: ignore[index]
        return {
            "feedback_posts": events,
            "events_total": total_events,
            "deliveries": sum(counts["deliveries_by_status"].values()),
            "elapsed_s": round(elapsed, 2),
            "events_per_s": round(total_events / elapsed, 1),
            "feedback_per_s": round(events / elapsed, 1),
            "reaction_ms": metrics.reaction_ms(conn, since),
            "reaction_ms_by_agent": metrics.reaction_ms_by_agent(conn, since),
            "backlog_drained_s": metrics.backlog_drained_s(conn, since),
            "processing_ms": metrics.processing_ms(conn, since),
            "max_parallel_agents_per_event": metrics.max_parallel_per_event(conn, since),
            "lost": int(lost),
            "duplicated": int(duplicated),
            "deliveries_by_status": counts["deliveries_by_status"],
            **({"pg_net": pgnet_doorbell.rings(conn, first_request)} if stack.pg_net is not None else {}),
        }


def main(args: Any) -> int:
    if getattr(args, "dashboard", False):
        from signalsloop.benchmarks import dashboard_bench

        return dashboard_bench.main(args)

    if getattr(args, "history", 0):
        from signalsloop.benchmarks import history

        return history.main(args)
    doorbell = getattr(args, "doorbell", "relay")
    with throwaway_stack("signalsloop-bench-", sweep_interval=0.5, doorbell=doorbell) as stack:
        _warm_up(stack)
        steady = run(stack, args.events, rate=args.rate)
        burst = run(stack, args.events)
        result = {"doorbell": stack.doorbell_name, "sweep": stack.sweep_name, **combine(steady, burst, args.rate)}
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


def combine(steady: dict[str, Any], burst: dict[str, Any], rate: float) -> dict[str, Any]:
    """Latency from the steady stream (what a user waits), throughput from the
    burst (what the stack sustains when the queue is never empty)."""
    return {
        "reaction_ms": steady["reaction_ms"],
        "reaction_ms_by_agent": steady["reaction_ms_by_agent"],
        "backlog_drained_s": steady["backlog_drained_s"],
        "processing_ms": steady["processing_ms"],
        "events_per_s": burst["events_per_s"],
        "deliveries_per_s": round(burst["deliveries"] / burst["elapsed_s"], 1),
        "max_parallel_agents_per_event": max(steady["max_parallel_agents_per_event"],
                                             burst["max_parallel_agents_per_event"]),
        "lost": steady["lost"] + burst["lost"],
        "duplicated": steady["duplicated"] + burst["duplicated"],
        "steady": {"offered_feedback_per_s": rate, **steady},
        "burst": {**burst, "reaction_ms_while_draining": burst["reaction_ms"]},
    }


def _warm_up(stack: Stack) -> None:
    """One post through every agent first, so cold starts (model loading) are
    not counted as steady-state latency; the cold start is in bench-quality."""
    run(stack, 3, writers=1)
