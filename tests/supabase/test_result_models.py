"""Each result records the model that produced it: every table agents may
write (public.agent_writable_tables(), the list apply_writes enforces) has a
``model`` column, except the few rows no model produced, each with its reason.
A new result table without one fails here."""

from __future__ import annotations

import psycopg

# Agent-writable tables that hold no model's output.
NO_MODEL = {
    "theme_feedback": "membership rows of a theme; the theme row records the model",
    "user_activity": "the raw contributions (post, comment, vote) engagement counts, as they happened",
}


def test_every_result_table_records_its_model(db: psycopg.Connection) -> None:
    writable = {r["t"] for r in db.execute("select unnest(public.agent_writable_tables()) as t")}
    with_model = {r["table_name"] for r in db.execute(
        "select table_name from information_schema.columns where table_schema = 'public' "
        "and column_name in ('model', 'embedding_model')")}  # themes: the embedding space's model
    assert {"competitor_mentions", "competitive_threats", "user_engagement", "roadmap_items",
            "spec_quality_checks", "notifications"} <= writable, "the Phase-3 results are agent-written"
    assert set(NO_MODEL) <= writable, "a stale exception"
    assert sorted(writable - with_model - set(NO_MODEL)) == []
    assert not set(NO_MODEL) & with_model, "an exception no longer needed"
