"""The hot path's SQL functions as PL/pgSQL (20261202001602): rewritten in
place from the catalog, with the same signature, attributes and answers."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.types.json import Jsonb

from shared.store import Write
from tests.helpers import Seed
from tests.supabase.plan_checks import ATTRS_SQL, HOT, assert_hot_functions_cached, one_value


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


PROBE_SQL = """
select jsonb_build_object(
  'claims', (select jsonb_agg(to_jsonb(public.claim_result('claimed', d.id, '00000000-0000-0000-0000-000000000001',
                                                           1, 5, d.agent)) order by d.id) from event_deliveries d),
  'due', (select jsonb_agg(public.delivery_is_due(d) order by d.id) from event_deliveries d),
  'subscribes', (select jsonb_agg(public.subscribes(a.event_types, t, a.name, p) order by a.name, t, p)
                   from agents a, unnest(array['feedback.created', 'sentiment.analyzed', 'spec.updated']) t,
                        unnest(array['sentiment', 'theme', null]) p),
  'shadow', (select jsonb_agg(jsonb_build_array(public.runs_in_shadow(a, e.aggregate_id),
                                                public.rollout_bucket(a.name, e.aggregate_id)) order by a.name, e.id)
               from agents a, events e),
  'doorbell', jsonb_build_array(public.doorbell_batches(), public.batch_starves(0)),
  'notify', (select jsonb_agg(public.notify_context(f.project_id, f.id, 10) order by f.id) from posts f),
  'priority', (select jsonb_agg(public.priority_context(f.project_id, f.id) order by f.id) from posts f),
  'engagement', (select jsonb_agg(public.engagement_activity(f.project_id, f.author_id, now() - interval '1 day')
                                  order by f.id) from posts f),
  'lexemes', public.lexeme_stats_version(),
  'duplicates', (select jsonb_agg(public.duplicate_context(f.project_id, f.id, 'm',
                                                           translate(e.embedding::text, '[]', '{}')::float8[], 5, 0)
                                  order by f.id)
                   from posts f join feedback_embeddings e on e.feedback_id = f.id))
  as probe
"""


def test_the_hot_functions_answer_the_same_rewritten(db: psycopg.Connection, seed: Seed) -> None:
    """What the migration does on PostgreSQL 15-17, done here on 18: every
    hot function rewritten, then the same calls on the same rows give the
    same answers (twice, the second time from cached plans)."""
    seed.configure(doorbell="pg_net")
    author, project = seed.user(), seed.project()
    vectors = [[0.6, 0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]]
    titles = ["Export to CSV crashes", "CSV export crashes on save", "Dark mode please"]
    posts = [seed.post(project, t, "since the update", author=author) for t in titles]
    rows = [{"feedback_id": p, "project_id": project, "model": "m", "dims": 3, "embedding": v}
            for p, v in zip(posts, vectors, strict=True)]
    db.execute("select apply_writes(%s)", (Jsonb([Write("feedback_embeddings", rows, ("feedback_id",)).to_json()]),))
    db.execute("update event_deliveries set last_request_id = 1 where id = (select min(id) from event_deliveries)")
    before = one_value(db, PROBE_SQL)
    assert isinstance(before, dict) and all(before[k] not in (None, []) for k in before), before
    assert any(m["matches"] for m in before["duplicates"]), "the hybrid search found the CSV pair"
    rewritten = db.execute("select count(*) filter (where public.cache_plans(p.oid::regprocedure)) as n from pg_proc p "
                           "where p.pronamespace = 'public'::regnamespace and p.proname = any(%s)", (HOT,)).fetchone()
    assert rewritten == {"n": len(HOT)}
    assert one_value(db, PROBE_SQL) == before
    assert one_value(db, PROBE_SQL) == before
