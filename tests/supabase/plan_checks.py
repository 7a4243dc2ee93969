"""Catalog checks of the hot path's functions, shared by the embedded
server's tests and the Debian PostgreSQL 15 ones (20261202001602)."""

from __future__ import annotations

from typing import Any

import psycopg

HOT = ["claim_result", "delivery_is_due", "subscribes", "runs_in_shadow", "rollout_bucket", "doorbell_batches",
       "batch_starves", "notify_context", "priority_context", "engagement_activity", "lexeme_stats_version",
       "lexeme_terms", "lexeme_overlaps_weighted", "embedding_similarity"]

ATTRS_SQL = """
select p.proname, l.lanname, p.provolatile, p.prosecdef, p.proisstrict, p.proconfig,
       pg_get_function_arguments(p.oid) as args, pg_get_function_result(p.oid) as result
  from pg_proc p join pg_language l on l.oid = p.prolang
 where p.pronamespace = 'public'::regnamespace and p.proname = %s
"""


def one_value(db: psycopg.Connection[Any], sql: str, *params: object) -> object:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return next(iter(row.values()))


def assert_hot_functions_cached(db: psycopg.Connection) -> None:
    """PL/pgSQL before PostgreSQL 18 (which caches SQL functions' plans
    itself), SQL from 18 on; their SET clauses kept either way."""
    version = int(one_value(db, "select current_setting('server_version_num')"))  # type: ignore[call-overload]
    language = "plpgsql" if version < 180000 else "sql"
    for name in HOT:
        [row] = db.execute(ATTRS_SQL, (name,)).fetchall()
        assert row["lanname"] == language, f"{name} on {version}: re-created? call public.cache_plans() on it again"
        assert any(c.startswith("search_path=") for c in row["proconfig"]), name
