"""The hot path's SQL functions as PL/pgSQL (20261202001602): rewritten in
place from the catalog, with the same signature, attributes and answers."""

from __future__ import annotations

import psycopg
import pytest

from tests.supabase.plan_checks import ATTRS_SQL, assert_hot_functions_cached, one_value


def test_hot_functions_keep_their_plans_on_this_server(db: psycopg.Connection) -> None:
    assert_hot_functions_cached(db)  # the embedded server is 18; test_plain_postgres checks Debian's 15


def test_cache_plans_keeps_signature_attributes_answers_and_sql_name_rules(db: psycopg.Connection) -> None:
    db.execute("create table public.probe_rows (id integer, label text)")
    db.execute("insert into public.probe_rows values (1, 'one'), (2, 'two'), (3, 'three')")
    # `label` is both a parameter and a column: in SQL the column wins.
    db.execute("""create function public.probe_scalar(label text, p_min integer default 2) returns text
                  language sql stable strict security definer set search_path = public, pg_temp as $$
                    select string_agg(label, ',' order by id) from public.probe_rows where id >= p_min $$""")
    # `n` is declared bigint and the query gives an integer: SQL casts it, RETURN QUERY would not.
    db.execute("""create function public.probe_set(p_min integer) returns table (n bigint, label text)
                  language sql stable set search_path = public, pg_temp as $$
                    select r.id, r.label from public.probe_rows r where r.id >= p_min order by r.id desc $$""")
    before = db.execute(ATTRS_SQL, ("probe_scalar",)).fetchone()
    scalar = one_value(db, "select public.probe_scalar('ignored')")
    rows = db.execute("select * from public.probe_set(2)").fetchall()
    assert one_value(db, "select public.cache_plans('public.probe_scalar(text, integer)')") is True
    assert one_value(db, "select public.cache_plans('public.probe_set(integer)')") is True
    assert one_value(db, "select public.cache_plans('public.probe_set(integer)')") is False  # already PL/pgSQL
    after = db.execute(ATTRS_SQL, ("probe_scalar",)).fetchone()
    assert after is not None and before is not None
    assert after["lanname"] == "plpgsql"
    assert {k: v for k, v in after.items() if k != "lanname"} == {k: v for k, v in before.items() if k != "lanname"}
    assert one_value(db, "select public.probe_scalar('ignored')") == scalar == "two,three"
    assert one_value(db, "select public.probe_scalar(null)") is None  # still strict
    assert db.execute("select * from public.probe_set(2)").fetchall() == rows == [
        {"n": 3, "label": "three"}, {"n": 2, "label": "two"}]


def test_cache_plans_refuses_what_it_cannot_rewrite(db: psycopg.Connection) -> None:
    db.execute("""create function public.probe_two() returns integer language sql as $$
                    select 1; select 2 $$""")
    with pytest.raises(psycopg.errors.RaiseException, match="not a one-statement SQL function"):
        db.execute("select public.cache_plans('public.probe_two()')")
