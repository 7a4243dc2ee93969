"""The dashboard's events function stays an index range scan on a long
history, for a member (under RLS) and for an operator, first page and next
keyset page alike. Plans are the real ones of the function's dynamic
statement, captured with auto_explain (log_nested_statements)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row

from signalsloop.benchmarks.history import load_history
from tests.conftest import cloned_database
from tests.supabase.test_scale_plans import INDEX_USE, captured_plans, seq_scans

EVENTS_INDEXES = {"events_created_id_idx", "idx_events_project", "idx_events_created_at", "events_type_created_idx"}


@pytest.fixture(scope="module")
def history(pg_server: str) -> Iterator[tuple[str, UUID, UUID]]:
    """30,000 events of one project and a member of it (module-wide; tests only read)."""
    with cloned_database(pg_server, "dp_") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            project = load_history(conn, 30_000, chunk=10_000)
            user = conn.execute("insert into auth.users (email) values ('m@example.com') returning id").fetchone()[0]  # type: ignore[index]
            conn.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')",
                         (project, user))
            conn.execute("analyze public.project_members")
        yield url, project, user


def events_as(conn: psycopg.Connection[Any], user: UUID | None, **args: Any) -> list[dict[str, Any]]:
    with conn.transaction():
        if user is not None:
            conn.execute("set local role authenticated")
            conn.execute("select set_config('request.jwt.claims', %s, true)",
                         (json.dumps({"sub": str(user), "role": "authenticated"}),))
        named = ", ".join(f"{k} => %({k})s" for k in args)
        row = conn.execute(f"select public.dashboard_events({named}) as r", args).fetchone()
    return list(row["r"]) if row else []  # type: ignore[call-overload]


@pytest.mark.parametrize("who", ["member", "operator"])
def test_the_first_and_next_events_pages_are_index_scans(history: tuple[str, UUID, UUID], who: str) -> None:
    url, _, user = history
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        as_user = user if who == "member" else None
        with captured_plans(conn) as plans:
            first = events_as(conn, as_user, p_limit=50)
            last = first[-1]
            second = events_as(conn, as_user, p_limit=50, p_before_at=last["created_at"], p_before_id=last["id"])
            typed = events_as(conn, as_user, p_limit=50, p_types=["feedback.created"])
    assert len(first) == len(second) == 50 and not {r["id"] for r in first} & {r["id"] for r in second}
    assert typed and {r["type"] for r in typed} == {"feedback.created"}
    statements = [p for p in plans if "from public.events e" in p]
    assert len(statements) == 3, "auto_explain captured the function's dynamic statement"
    assert seq_scans(plans) == []
    for plan in statements:
        assert {m for m in INDEX_USE.findall(plan)} & EVENTS_INDEXES, plan
