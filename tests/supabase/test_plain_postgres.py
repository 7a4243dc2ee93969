"""The migrations on a plain PostgreSQL without pgvector (the Debian server,
where the machine has one): they apply, twice, and similarity search falls
back to real[] vectors. Skipped where no such server is installed."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.postgres_store import PostgresStore
from shared.store import Write
from signalsloop.db import migrate, migrations
from tests.supabase.debian_pg import debian_cluster
from tests.supabase.plan_checks import assert_hot_functions_cached


@pytest.fixture(scope="module")
def plain_url(pg_server: str) -> Iterator[str]:
    # pg_server first: as root, the embedded server creates the user the cluster runs as
    with debian_cluster(55433) as url:
        yield url


def test_migrations_apply_twice_and_similarity_falls_back_to_arrays(plain_url: str) -> None:
    assert migrate(plain_url) == [m.version for m in migrations()]
    assert migrate(plain_url) == []
    with psycopg.connect(plain_url, autocommit=True) as conn:
        assert conn.execute("select 1 from pg_extension where extname = 'vector'").fetchone() is None
    with psycopg.connect(plain_url, autocommit=True, row_factory=dict_row) as conn:
        assert_hot_functions_cached(conn)  # PostgreSQL 15: the hot path's functions are PL/pgSQL
        assert conn.execute("select count(*) as n from pg_proc where pronamespace = 'public'::regnamespace "
                            "and proconfig is not null and not ('jit=off' = any (proconfig))").fetchone() == {"n": 0}
    with psycopg.connect(plain_url, autocommit=True) as conn:
        user = conn.execute("insert into auth.users (email) values ('a@b.c') returning id").fetchone()[0]  # type: ignore[index]
        project = conn.execute("insert into projects (name, slug, owner_id) values ('A', 'a', %s) returning id",
                               (user,)).fetchone()[0]  # type: ignore[index]
        near, far = (conn.execute("insert into posts (project_id, title) values (%s, %s) returning id",
                                  (project, t)).fetchone()[0] for t in ("near", "far"))  # type: ignore[index]
        # two posts, five subscribers each
        assert conn.execute("select count(*) from event_deliveries").fetchone()[0] == 10  # type: ignore[index]
    store = PostgresStore(plain_url)
    try:
        rows = [{"feedback_id": near, "project_id": project, "model": "m", "dims": 3, "embedding": [0.6, 0.8, 0.0]},
                {"feedback_id": far, "project_id": project, "model": "m", "dims": 3, "embedding": [0.0, 0.0, 1.0]}]
        store.rpc("apply_writes", {"p_writes": [Write("feedback_embeddings", rows, ("feedback_id",)).to_json()]})
        found = store.rpc("match_feedback", {"p_project_id": project, "p_model": "m", "p_embedding": [0.8, 0.6, 0.0],
                                             "p_limit": 5, "p_min_similarity": 0.5})
    finally:
        store.close()
    assert [(r["feedback_id"], round(r["similarity"], 2)) for r in found] == [(near, 0.96)]
