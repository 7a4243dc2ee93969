"""The migrations on a real PostgreSQL: apply cleanly, twice, and record
history as the Supabase CLI does."""

from __future__ import annotations

import psycopg

from signalsloop.db import migrate, migrations
from tests.conftest import url_for


def test_migrations_apply_to_an_empty_database_and_twice_change_nothing(pg_server: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("drop database if exists fresh_migrate with (force)")
        conn.execute("create database fresh_migrate")
    url = url_for(pg_server, "fresh_migrate")
    first = migrate(url)
    assert first == [m.version for m in migrations()]
    with psycopg.connect(url) as conn:
        tables_before = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()
    assert migrate(url) == []
    with psycopg.connect(url) as conn:
        history = conn.execute(
            "select version, name, cardinality(statements) from supabase_migrations.schema_migrations order by 1"
        ).fetchall()
        tables_after = conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone()
    assert [h[0] for h in history] == first
    assert all(h[2] and h[2] > 0 for h in history), "each migration records its statements"
    assert history[0][1] == "domain"
    assert tables_before == tables_after


def test_every_public_table_has_row_level_security(db: psycopg.Connection) -> None:
    rows = db.execute(
        "select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind = 'r'"
    ).fetchall()
    assert len(rows) >= 15
    assert [r["relname"] for r in rows if not r["relrowsecurity"]] == []


def test_events_table_keeps_the_seed_shape_and_indexes(db: psycopg.Connection) -> None:
    cols = db.execute(
        "select column_name, data_type, column_default from information_schema.columns "
        "where table_name = 'events' order by ordinal_position"
    ).fetchall()
    assert [c["column_name"] for c in cols] == [
        "id", "type", "aggregate_type", "aggregate_id", "payload", "metadata", "version", "created_at",
    ]
    assert cols[6]["column_default"] == "1"
    indexes = {r["indexname"] for r in db.execute("select indexname from pg_indexes where tablename = 'events'")}
    assert {"idx_events_type", "idx_events_aggregate", "idx_events_created_at",
            "idx_events_correlation", "idx_events_project"} <= indexes


def test_the_registry_is_seeded_with_the_plan_subscriptions(db: psycopg.Connection) -> None:
    agents = {r["name"]: r for r in db.execute("select * from agents")}
    assert agents["sentiment"]["event_types"] == ["feedback.created", "feedback.updated"]
    assert agents["theme"]["serialize_by_project"] is True
    assert "theme.threshold_reached" in agents["spec_writer"]["event_types"]
    enabled = {n for n, a in agents.items() if a["enabled"]}
    assert enabled == {"sentiment", "duplicate", "theme", "spec_writer", "notify", "priority", "spec_quality"}
    assert agents["notify"]["event_types"] == ["*"]
