-- The hot path's SQL functions become PL/pgSQL, so their plans are cached
-- on PostgreSQL 15-17 (issue: production path on Supabase).
--
-- Before PostgreSQL 18 a SQL-language function that is not inlined (and a
-- SET clause, which every backbone function has, stops inlining) is parsed
-- and planned again on every call; PL/pgSQL keeps its plans for the
-- session. Measured with track_functions = all over `signalsloop bench
-- --doorbell pg_net` (stand-in, the same code): claim_result() took 0.72 ms
-- a call on PostgreSQL 15 and 0.16 ms on 18; batch_starves() 2.9 ms and
-- 0.65 ms; lexeme_stats_version() 1.37 ms and 0.42 ms; delivery_is_due(),
-- called for every candidate of every claim, 0.063 ms and 0.013 ms. Supabase
-- runs 15 and 17. On 18 the functions stay as they are.
--
-- The bodies are not copied here: cache_plans() rewrites a one-statement SQL
-- function in place from the catalog (its arguments, result, volatility,
-- security, strictness, parallel safety, cost and SET clauses kept; grants,
-- owner and comment are kept by CREATE OR REPLACE), as `return (<select>)`
-- for a scalar and `return query <select>` for a set (its columns cast to
-- the declared ones, as a SQL function's result is). `#variable_conflict
-- use_column` keeps SQL's name resolution, where a column wins over a
-- parameter of the same name. A scalar's SELECT must give one row at most
-- (`return (...)` raises where SQL would take the first row): every function
-- listed below is a keyed lookup or an aggregate. A later migration that
-- re-creates one of them in SQL calls cache_plans() on it again, on servers
-- before 18 as below (tests/supabase/plan_checks.py lists them; the test on
-- Debian's PostgreSQL 15 fails otherwise).

create function public.cache_plans(p_function regprocedure) returns boolean
language plpgsql set search_path = public, pg_temp as $$
declare
  p pg_catalog.pg_proc;
  v_body text;
  v_sets text := '';
  v_cfg text;
begin
  select * into strict p from pg_catalog.pg_proc where oid = p_function;
  if p.prolang <> (select l.oid from pg_catalog.pg_language l where l.lanname = 'sql') then
    return false;  -- already PL/pgSQL (or another language): nothing to do
  end if;
  v_body := regexp_replace(p.prosrc, ';\s*$', '');
  if p.prokind <> 'f' or v_body = '' or position(';' in v_body) > 0 then
    raise exception 'cache_plans: % is not a one-statement SQL function', p_function;
  end if;
  -- RETURN QUERY wants the result's exact column types where a SQL
  -- function's final SELECT may differ by an implicit cast (integer for a
  -- bigint column): each output column is cast to its declared type.
  if p.proretset and p.proargmodes is not null and 't' = any (p.proargmodes) then
    select format('select %s from (%s) as q(%s)',
                  string_agg(format('q.%I::%s', a.name, format_type(a.type, null)), ', ' order by a.n),
                  v_body, string_agg(format('%I', a.name), ', ' order by a.n))
      into v_body
      from unnest(p.proargnames, p.proallargtypes, p.proargmodes) with ordinality as a(name, type, mode, n)
     where a.mode = 't';
  end if;
  foreach v_cfg in array coalesce(p.proconfig, '{}') loop
    v_sets := v_sets || format(' set %s = %s', split_part(v_cfg, '=', 1), substr(v_cfg, position('=' in v_cfg) + 1));
  end loop;
  execute format(
    'create or replace function %I.%I(%s) returns %s language plpgsql %s %s %s %s cost %s%s%s as %L',
    p.pronamespace::regnamespace, p.proname, pg_catalog.pg_get_function_arguments(p.oid),
    pg_catalog.pg_get_function_result(p.oid),
    case p.provolatile when 'i' then 'immutable' when 's' then 'stable' else 'volatile' end,
    case when p.prosecdef then 'security definer' else 'security invoker' end,
    case when p.proisstrict then 'strict' else 'called on null input' end,
    case p.proparallel when 's' then 'parallel safe' when 'r' then 'parallel restricted' else 'parallel unsafe' end,
    p.procost, case when p.proretset then format(' rows %s', p.prorows) else '' end, v_sets,
    format(E'\n#variable_conflict use_column\nbegin\n  %s\nend\n',
           case when p.proretset then format(E'return query\n%s;', v_body)
                else format(E'return (\n%s);', v_body) end));
  return true;
end
$$;

comment on function public.cache_plans(regprocedure) is
  'Rewrites a one-statement SQL function as PL/pgSQL (cached plans before PostgreSQL 18). '
  'See 20261202001602_plan_cached_functions.sql.';
revoke execute on function public.cache_plans(regprocedure) from public, anon, authenticated, service_role;

select public.cache_plans(f::regprocedure) from unnest(array[
  -- every claim, ring and drain
  'public.claim_result(text, bigint, uuid, integer, integer, text)',
  'public.delivery_is_due(public.event_deliveries)',
  'public.subscribes(text[], text, text, text)',
  'public.runs_in_shadow(public.agents, uuid)',
  'public.rollout_bucket(text, uuid)',
  'public.doorbell_batches()',
  'public.batch_starves(integer)',
  -- the agents' one-call reads
  'public.notify_context(uuid, uuid, integer)',
  'public.priority_context(uuid, uuid)',
  'public.engagement_activity(uuid, uuid, timestamp with time zone)',
  -- hybrid search, once per post
  'public.lexeme_stats_version()',
  'public.lexeme_terms(tsvector, jsonb, integer, double precision)',
  'public.lexeme_overlaps_weighted(tsvector, tsvector[], jsonb)',
  'public.embedding_similarity(text, double precision[], uuid[])'
]) as f
 -- PostgreSQL 18 caches SQL functions' plans itself, and there PL/pgSQL's
 -- own overhead per call made the relay's burst 10% slower (measured).
 where current_setting('server_version_num')::integer < 180000;

-- cache_plans() itself was created after 20261202001601 ran.
select public.disable_jit();
