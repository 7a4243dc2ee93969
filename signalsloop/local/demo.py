"""``make demo`` / ``signalsloop demo``: the whole system on this machine, fed
the shipped Tidewater scenario, with a progress bar and a readable summary
(or one JSON object with ``--json``). Exits 0 when every delivery succeeded."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from signalsloop.local import demo_agents, scenario
from signalsloop.local.stack import Stack, throwaway_stack
from signalsloop.operations import metrics

Conn = psycopg.Connection[dict[str, Any]]


def one(conn: Conn, sql: str, params: Any = None) -> Any:
    """The first column of the single row ``sql`` returns."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return next(iter(row.values()))


def seed_project(conn: Conn) -> tuple[UUID, list[UUID]]:
    """The demo project, its owner and a crowd of voters."""
    users = [one(conn, "insert into auth.users (email) values (%s) returning id",
                 (f"user{i}-{uuid4().hex[:6]}@tidewater.example",)) for i in range(16)]
    project = one(conn, "insert into projects (name, slug, owner_id, settings) values (%s, %s, %s, %s) returning id",
                  (scenario.PRODUCT, f"tidewater-{uuid4().hex[:6]}", users[0],
                   Jsonb({"theme_threshold": scenario.SPEC_THRESHOLD, **demo_agents.PROJECT_SETTINGS})))
    for user in users[1:]:
        conn.execute("insert into project_members (project_id, user_id) values (%s, %s)", (project, user))
    demo_agents.seed_competitors(conn, project)
    return project, users


def add_item(conn: Conn, project: UUID, users: list[UUID], item: scenario.Item, n: int) -> UUID:
    """One post with its votes and comments, in one transaction, as the web app would."""
    with conn.transaction():
        post = one(conn, "insert into posts (project_id, author_id, title, body) values (%s, %s, %s, %s) "
                   "returning id", (project, users[n % len(users)], item.title, item.body))
        for voter in users[1:item.votes + 1]:
            conn.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, voter))
        for i, text in enumerate(item.comments):
            conn.execute("insert into comments (post_id, author_id, body) values (%s, %s, %s)",
                         (post, users[(n + i + 1) % len(users)], text))
    return post


def run_scenario(stack: Stack, progress: Progress | None) -> datetime:
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
        started = one(conn, "select now() as t")
        project, users = seed_project(conn)
        n = 0
        for wave in scenario.waves():
            for item in wave:
                add_item(conn, project, users, item, n)
                n += 1
                time.sleep(0.05)
            stack.wait_settled(timeout=120, on_progress=_progress_callback(progress))
        # The team approves the drafted spec; then the clock moves on and nobody works on it.
        demo_agents.approve_drafted_specs(conn, project)
        stack.wait_settled(timeout=60, on_progress=_progress_callback(progress))
        demo_agents.days_later(conn, project)
        stack.wait_settled(timeout=60, on_progress=_progress_callback(progress))
        demo_agents.newcomer(conn, project)
        stack.wait_settled(timeout=60, on_progress=_progress_callback(progress))
    return started


def tick_the_clock(stack: Stack, progress: Progress | None) -> None:
    """Time passes: one clock.tick per project, on which notify sends the digest."""
    assert stack.database_url
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("select public.publish_clock_tick(now())")
    stack.wait_settled(timeout=60, on_progress=_progress_callback(progress))


def _progress_callback(progress: Progress | None) -> Any:
    if progress is None:
        return None
    task = progress.task_ids[0]

    def update(counts: dict[str, int]) -> None:
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in ("succeeded", "dead", "blocked"))
        progress.update(task, total=total, completed=done)
    return update


def summary(conn: Conn, since: datetime) -> dict[str, Any]:
    out: dict[str, Any] = metrics.counts(conn, since)
    out["reaction_ms"] = metrics.reaction_ms(conn, since)
    out["processing_ms"] = metrics.processing_ms(conn, since)
    out["specs_drafted"] = [
        {"title": r["title"], "theme": r["content"].get("theme"), "evidence": len(r["content"].get("evidence", [])),
         "feedback_count": r["content"].get("feedback_count"), "model": r["model"]}
        for r in conn.execute("select * from specs where source = 'agent' and created_at >= %s", (since,))]
    out["themes"] = [dict(r) for r in conn.execute(
        "select name, feedback_count, negative_count, positive_count from themes where created_at >= %s "
        "order by feedback_count desc, name limit 8", (since,))]
    out["duplicates"] = [dict(r) for r in conn.execute(
        "select a.title as feedback, b.title as duplicate_of, d.similarity from duplicates d "
        "join posts a on a.id = d.feedback_id join posts b on b.id = d.duplicate_of where d.created_at >= %s",
        (since,))]
    out["notifications"] = [dict(r) for r in conn.execute(
        "select importance, status, text from notifications where created_at >= %s and importance <> 'low' "
        "and status <> 'suppressed' and dedupe_key not like 'digest:%%' "
        "order by case importance when 'urgent' then 0 when 'high' then 1 else 2 end, created_at", (since,))]
    out["chain_to_spec"] = chain_to_spec(conn, since)
    out["chain_to_stall_alert"] = demo_agents.chain_to_stall_alert(conn, since)
    out["spec_quality"] = spec_quality(conn, since)
    out["digests"] = digests(conn, since)
    out.update(demo_agents.summary(conn, since))
    return out


def spec_quality(conn: Conn, since: datetime) -> list[dict[str, Any]]:
    """Each drafted spec's quality check: the score and what to fix."""
    return [{"title": r["title"], "version": r["spec_version"], "score": r["score"], "model": r["model"],
             "fixes": [f["fix"] for f in r["findings"] if not f["passed"]]}
            for r in conn.execute("select s.title, q.* from spec_quality_checks q join specs s on s.id = q.spec_id "
                                  "where q.checked_at >= %s order by q.checked_at", (since,))]


def digests(conn: Conn, since: datetime) -> list[dict[str, Any]]:
    """The digests notify sent on the clock's tick, with how many items each carried."""
    return [dict(r) for r in conn.execute(
        "select d.status, d.text, (select count(*) from notifications i where i.digest_key = d.dedupe_key) as items "
        "from notifications d where d.dedupe_key like 'digest:%%' and d.created_at >= %s order by d.created_at",
        (since,))]


def chain_to_spec(conn: Conn, since: datetime) -> list[dict[str, Any]]:
    """From a spec.auto_drafted back to the feedback.created that started it, via causation ids."""
    row = conn.execute("select * from events where type = 'spec.auto_drafted' and created_at >= %s limit 1",
                       (since,)).fetchone()
    return demo_agents.causes(conn, row)


def main(args: Any) -> int:
    from signalsloop.local.demo_view import render_summary

    as_json = bool(getattr(args, "json", False))
    console = Console(stderr=as_json)
    console.print("starting PostgreSQL, the agent functions and the relay...")
    with throwaway_stack("signalsloop-demo-") as stack:
        columns = (TextColumn("agents working"), BarColumn(), MofNCompleteColumn(), TextColumn("deliveries"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            progress.add_task("deliveries", total=None)
            since = run_scenario(stack, progress)
            tick_the_clock(stack, progress)
        assert stack.database_url
        with psycopg.connect(stack.database_url, autocommit=True, row_factory=dict_row) as conn:
            result = summary(conn, since)
        if as_json:
            print(json.dumps(result, default=str))
        else:
            render_summary(console, result)
        show_dashboard(stack, console, keep=bool(getattr(args, "keep", False)))
    return 0 if set(result["deliveries_by_status"]) == {"succeeded"} else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def show_dashboard(stack: Stack, console: Console, *, keep: bool) -> None:
    """End with the dashboard's sign-in URL; with ``keep``, serve until Ctrl-C."""
    url = stack.start_dashboard()
    console.print(f"dashboard: {url}", highlight=False, soft_wrap=True)
    if not keep:
        console.print("(the demo stack stops now; `signalsloop demo --keep` keeps it up until Ctrl-C)")
        return
    console.print("the stack stays up: open the URL; Ctrl-C stops everything")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping...")
