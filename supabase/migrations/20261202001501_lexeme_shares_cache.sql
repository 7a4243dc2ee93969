-- The duplicate agent's search, cheaper per call, same results.
--
-- A pg_net burst ends when `duplicate` (one post of a project at a time)
-- reaches its last post, so the time of one match_feedback_hybrid call is
-- the burst's pace. Measured inside one call (auto_explain, 600 posts):
-- a third of it read the lexeme statistics again and again:
--
-- * lexeme_shares() turned pg_stats' most_common_elems (about 700
--   lexemes, an anyarray) into text, parsed it back as text[] and built a
--   jsonb map of it, on every call;
-- * lexeme_terms() and lexeme_overlaps_weighted() then expanded that whole
--   map with jsonb_each to join the few lexemes they needed.
--
-- Now the map is kept in lexeme_shares_cache with the statistics' version
-- (lexeme_stats_version() below). lexeme_shares() returns the
-- cached map while that version is current and computes it as before
-- otherwise, so a result never depends on whether the cache was fresh. The
-- sweep (run_periodic) refreshes it after each analyze. The two readers look
-- up only the lexemes they need (`->>` on the map: a binary search).

create table public.lexeme_shares_cache (
  id boolean primary key default true check (id),
  stats_version text not null,
  shares jsonb not null,
  refreshed_at timestamptz not null default now()
);
alter table public.lexeme_shares_cache enable row level security;  -- no policy: nobody but the owner reads it
comment on table public.lexeme_shares_cache is
  'Lexeme rarity from the statistics of feedback_lexemes, as lexeme_shares() computes it, with the statistics version it was computed from.';

-- Which statistics pg_stats shows for feedback_lexemes to this transaction:
-- ANALYZE (manual or autovacuum's) moves one of the analyze times, and the
-- element frequencies (a real[], cheap to read, unlike the elements' anyarray)
-- are the statistics themselves, as this transaction sees them. The times
-- alone could mislead: they are not transactional, so an ANALYZE inside a
-- transaction not yet committed (`signalsloop analyze` loads and analyzes a
-- scratch project in one) moves them for everyone, and a map computed
-- meanwhile from the committed statistics would carry the new version.
create function public.lexeme_stats_version() returns text
language sql stable security definer set search_path = public, pg_temp as $$
  select coalesce(pg_catalog.pg_stat_get_last_analyze_time(c.oid)::text, '-') || '/'
         || coalesce(pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)::text, '-') || '/'
         || coalesce((select md5(s.most_common_elem_freqs::text) from pg_catalog.pg_stats s
                       where s.schemaname = 'public' and s.tablename = 'feedback_lexemes'
                         and s.attname = 'lexemes'), '-')
    from pg_catalog.pg_class c where c.oid = 'public.feedback_lexemes'::regclass
$$;

-- The map as before (20261202000501_identifier_lexemes.sql), computed live.
create function public.lexeme_shares_live() returns jsonb
language sql stable security definer set search_path = public, pg_temp as $$
  select coalesce(jsonb_object_agg(u.elem, u.share), '{}'::jsonb)
         || jsonb_build_object('', coalesce(min(u.share) / 2, 0.5))
    from pg_catalog.pg_stats s
    cross join lateral unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) as u(elem, share)
   where s.schemaname = 'public' and s.tablename = 'feedback_lexemes' and s.attname = 'lexemes'
     and u.elem is not null
$$;

-- `|| '{}'` hands back a value in memory: the stored map is compressed, and
-- every `->>` on a compressed value would decompress all of it again
-- (measured: slower than computing the map live).
create or replace function public.lexeme_shares() returns jsonb
language sql stable security definer set search_path = public, pg_temp as $$
  select coalesce((select c.shares || '{}'::jsonb from public.lexeme_shares_cache c
                    where c.stats_version = public.lexeme_stats_version()),
                  public.lexeme_shares_live())
$$;

-- Called by the sweep: recompute the map when the statistics changed.
-- Returns true when it did.
create function public.refresh_lexeme_shares() returns boolean
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_version text := public.lexeme_stats_version();
begin
  if exists (select 1 from public.lexeme_shares_cache c where c.stats_version = v_version) then
    return false;
  end if;
  insert into public.lexeme_shares_cache (id, stats_version, shares)
  values (true, v_version, public.lexeme_shares_live())
  on conflict (id) do update set stats_version = excluded.stats_version, shares = excluded.shares,
                                 refreshed_at = now();
  return true;
end
$$;

-- Same result as 20261202000801's: the share of each lexeme looked up, not joined.
create or replace function public.lexeme_terms(p_lexemes tsvector, p_shares jsonb, p_max_terms integer default 32,
                                               p_max_rows double precision default 500)
returns table (lexeme text, weight double precision)
language sql stable security definer set search_path = public, pg_temp as $$
  with size as (
    select greatest(c.reltuples, 0)::double precision as reltuples
      from pg_catalog.pg_class c where c.oid = 'public.feedback_lexemes'::regclass
  ), terms as (
    select x.lexeme, x.weights, (p_shares ->> x.lexeme)::double precision as share
      from unnest(p_lexemes) x
  )
  select x.lexeme,
         ln(1 / least(0.999, greatest(1e-9, coalesce(x.share, (p_shares ->> '')::double precision, 0.5)))) ^ 2
    from terms x cross join size s
   where coalesce(x.share * s.reltuples, 0) <= p_max_rows
   order by coalesce(x.share * s.reltuples, 0), 'A' = any(x.weights) desc, length(x.lexeme) desc, x.lexeme
   limit p_max_terms
$$;

-- Same result as 20261202000501's: the share of each lexeme looked up, not joined.
create or replace function public.lexeme_overlaps_weighted(p_a tsvector, p_others tsvector[], p_shares jsonb)
returns table (n bigint, overlap double precision)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  with weight as (
    select x.lexeme,
           ln(1 / least(0.999, greatest(1e-9, coalesce((p_shares ->> x.lexeme)::double precision,
                                                       (p_shares ->> '')::double precision, 0.5)))) ^ 2 as w
      from (select distinct l as lexeme from unnest(tsvector_to_array(coalesce(p_a, ''::tsvector))) l
            union
            select l from unnest(p_others) o, unnest(tsvector_to_array(coalesce(o, ''::tsvector))) l) x
  ), mine as (
    select l as lexeme from unnest(tsvector_to_array(coalesce(p_a, ''::tsvector))) l
  ), mine_total as (
    select sum(w.w) as total from mine join weight w using (lexeme)
  ), theirs as (
    select o.n, sum(w.w) as total, sum(w.w) filter (where m.lexeme is not null) as shared
      from unnest(p_others) with ordinality as o(v, n)
      cross join lateral unnest(tsvector_to_array(coalesce(o.v, ''::tsvector))) l
      join weight w on w.lexeme = l
      left join mine m on m.lexeme = l
     group by o.n
  )
  select o.n, coalesce(t.shared / nullif(sqrt(mt.total * t.total), 0), 0)
    from generate_series(1, cardinality(p_others)) as o(n)
    left join theirs t on t.n = o.n cross join mine_total mt
   order by o.n
$$;

-- The query vector, converted once. `p_embedding::vector(256)` inside the
-- ORDER BY (or the select list) of a generic plan is evaluated for every
-- row scanned: perf showed deconstruct_array and array_to_vector as the
-- largest items of a match, for 600 posts. Same rows, same order.
do $outer$
declare
  v_schema text := (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                     where e.extname = 'vector');
begin
  if v_schema is null or (select format_type(atttypid, atttypmod) from pg_attribute
                           where attrelid = 'public.feedback_embeddings'::regclass and attname = 'embedding') = 'real[]'
  then
    return;  -- plain PostgreSQL: real[] and an exact scan, nothing converted
  end if;
  execute format($f$
    create or replace function public.nearest_feedback(p_project_id uuid, p_model text,
                                                       p_embedding double precision[], p_limit integer,
                                                       p_exclude uuid)
    returns table (feedback_id uuid)
    language plpgsql stable security definer set search_path = public, pg_temp
    set hnsw.iterative_scan = 'relaxed_order' set hnsw.ef_search = 100 as $body$
    declare
      v_query %1$I.vector(256);
    begin
      if cardinality(p_embedding) <> 256 then
        return query select m.feedback_id
                       from public.match_feedback(p_project_id, p_model, p_embedding, p_limit, -1, p_exclude) m;
        return;
      end if;
      v_query := p_embedding::%1$I.vector(256);
      return query
        select e.feedback_id
          from public.feedback_embeddings e
         where e.dims = 256 and e.project_id = p_project_id and e.model = p_model
           and e.feedback_id is distinct from p_exclude
         order by e.embedding::%1$I.vector(256) operator(%1$I.<=>) v_query
         limit p_limit;
    end
    $body$$f$, v_schema);
  execute format($f$
    create or replace function public.embedding_similarity(p_model text, p_embedding double precision[],
                                                           p_ids uuid[])
    returns table (feedback_id uuid, similarity real)
    language sql stable security definer set search_path = public, pg_temp as $body$
      with q as materialized (select p_embedding::%1$I.vector as v)
      select e.feedback_id, (1 - (e.embedding operator(%1$I.<=>) q.v))::real
        from public.feedback_embeddings e cross join q
       where e.feedback_id = any(p_ids) and e.model = p_model and e.dims = cardinality(p_embedding)
    $body$$f$, v_schema);
end
$outer$;

create or replace function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object(
    'ring_errors', public.collect_ring_errors(),
    'rung', public.sweep_deliveries(p_limit),
    'clock_ticks', public.clock_periodic(),
    'notifications_resolved', public.resolve_stale_notifications(),
    'rate_limits_pruned', public.prune_rate_limits(),
    'alerts', public.evaluate_agent_alerts(),
    'pruned', public.prune_retention_due(500),
    'lexeme_shares_refreshed', public.refresh_lexeme_shares());
end
$$;

select public.lock_down_project_objects(array['lexeme_shares_cache', 'lexeme_stats_version', 'lexeme_shares_live',
                                              'refresh_lexeme_shares']);
-- Inner steps of security-definer functions: no API role calls them.
revoke execute on function public.lexeme_stats_version(), public.lexeme_shares_live(),
  public.refresh_lexeme_shares() from public, anon, authenticated, service_role;
revoke all on public.lexeme_shares_cache from anon, authenticated, service_role;
select public.refresh_lexeme_shares();
