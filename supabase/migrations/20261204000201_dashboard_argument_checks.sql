-- The dashboard's reads refuse arguments that mean nothing, as dashboard_events
-- already did for p_limit. A member may call these RPCs through PostgREST
-- with any value. p_window_s NULL, negative or NaN counted nothing and
-- answered zeros, as if there had been no traffic, and a huge window ended
-- in "interval out of range". Now each is refused with 22023 naming the
-- argument and its range. (The dashboard itself passes fixed windows of 15
-- minutes to 7 days.) dashboard_events' message for p_limit NULL read "not ".
-- The bodies are otherwise those of 20261202000401_dashboard_reads.sql;
-- CREATE OR REPLACE keeps their grants.

-- The start of a dashboard window, or 22023 naming p_window_s: a window of
-- more than 0 and at most 366 days. (NaN compares equal to itself in
-- PostgreSQL, and greater than every number.)
create function public.dashboard_since(p_window_s double precision) returns timestamptz
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
begin
  if p_window_s is null or p_window_s = 'NaN' or p_window_s <= 0 or p_window_s > 31622400 then
    raise exception using errcode = '22023',
      message = format('p_window_s must be more than 0 and at most 31622400 seconds (366 days), not %s',
                       coalesce(p_window_s::text, 'null'));
  end if;
  return now() - make_interval(secs => p_window_s);
end
$$;
-- The reads are security invoker: their callers run it.
revoke execute on function public.dashboard_since(double precision) from public, anon;
grant execute on function public.dashboard_since(double precision) to authenticated, service_role;

create or replace function public.dashboard_events(
  p_types text[] default null, p_project_id uuid default null, p_agent text default null,
  p_status text default null, p_since timestamptz default null, p_until timestamptz default null,
  p_aggregate_id uuid default null, p_before_at timestamptz default null, p_before_id uuid default null,
  p_since_at timestamptz default null, p_limit integer default 50)
returns jsonb
language plpgsql stable security invoker set search_path = public, pg_temp as $$
declare
  v_where text[] := array['true'];
  v_within text[];
  v_rows jsonb;
begin
  if p_limit is null or p_limit < 1 or p_limit > 500 then
    raise exception using errcode = '22023', message = format('p_limit must be 1 to 500, not %s', coalesce(p_limit::text, 'null'));
  end if;
  if (p_before_at is null) <> (p_before_id is null) then
    raise exception using errcode = '22023', message = 'the cursor needs both p_before_at and p_before_id';
  end if;
  -- A member's own projects: the planner walks the per-project index instead
  -- of testing the policy on every event of every tenant (RLS still applies).
  if current_user in ('authenticated', 'anon') and p_project_id is null then
    select coalesce(array_agg(m.project_id::text), '{}') into v_within
      from public.project_members m where m.user_id = auth.uid();
    v_where := array_append(v_where, 'e.metadata ->> ''project_id'' = any($12)');
  end if;
  if p_types is not null and cardinality(p_types) > 0 then
    v_where := array_append(v_where, 'e.type = any($1)');
  end if;
  if p_project_id is not null then
    v_where := array_append(v_where, 'e.metadata ->> ''project_id'' = $2::text');
  end if;
  if p_agent is not null or p_status is not null then
    v_where := array_append(v_where, ('exists (select 1 from public.event_deliveries d where d.event_id = e.id'
                           || case when p_agent is not null then ' and d.agent = $3' else '' end
                           || case when p_status is not null then ' and d.status = $4' else '' end || ')'));
  end if;
  if p_since is not null then
    v_where := array_append(v_where, 'e.created_at >= $5');
  end if;
  if p_until is not null then
    v_where := array_append(v_where, 'e.created_at < $6');
  end if;
  if p_aggregate_id is not null then
    v_where := array_append(v_where, 'e.aggregate_id = $7');
  end if;
  if p_before_at is not null then
    v_where := array_append(v_where, '(e.created_at, e.id) < ($8, $9)');
  end if;
  if p_since_at is not null then
    v_where := array_append(v_where, 'e.created_at >= $10');
  end if;
  execute format($q$
    select coalesce(jsonb_agg(to_jsonb(x) order by x.created_at desc, x.id desc), '[]'::jsonb) from (
      select e.id, e.type, e.aggregate_type, e.aggregate_id, e.created_at,
             e.metadata ->> 'project_id' as project_id, e.metadata ->> 'producer' as producer,
             e.metadata ->> 'correlation_id' as correlation_id,
             (select coalesce(jsonb_object_agg(d.agent, d.status order by d.agent), '{}'::jsonb)
                from public.event_deliveries d where d.event_id = e.id) as deliveries
        from public.events e
       where %s
       order by e.created_at desc, e.id desc
       limit $11) x$q$, array_to_string(v_where, ' and '))
    into v_rows
    using p_types, p_project_id, p_agent, p_status, p_since, p_until, p_aggregate_id, p_before_at, p_before_id,
          p_since_at, p_limit, v_within;
  return v_rows;
end
$$;

create or replace function public.dashboard_agent_health(p_window_s double precision default 3600) returns jsonb
language sql stable security invoker set search_path = public, pg_temp as $$
  with w as (select public.dashboard_since(p_window_s) as since),
  d as (select d.agent, d.status from public.event_deliveries d, w where d.created_at >= w.since),
  a as (select d.agent, x.outcome, extract(epoch from x.finished_at - x.started_at) * 1000 as ms
          from public.delivery_attempts x join public.event_deliveries d on d.id = x.delivery_id, w
         where x.started_at >= w.since),
  stats as (
    select g.name as agent, g.enabled, g.mode, g.rollout_percent, g.circuit_state, g.consecutive_failures,
           (select count(*) from d where d.agent = g.name) as deliveries,
           (select count(*) from d where d.agent = g.name and d.status = 'succeeded') as succeeded,
           (select count(*) from a where a.agent = g.name and a.outcome in ('failed', 'dead', 'expired')) as failures,
           (select count(*) from public.event_deliveries x where x.agent = g.name and x.status = 'dead') as dead,
           (select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by a.ms)
              from a where a.agent = g.name and a.outcome = 'succeeded') as exec_ms,
           (select extract(epoch from now() - min(x.event_created_at)) from public.event_deliveries x
             where x.agent = g.name and x.status in ('pending', 'running', 'failed', 'parked')) as lag_s,
           (select count(*) from public.event_deliveries x
             where x.agent = g.name and x.status in ('pending', 'failed') and x.ring_count > 0
               and x.attempts = 0 and x.rung_at < now() - interval '10 seconds') as unanswered_rings
      from public.agents g),
  -- a delivery is pending at t when it existed and had not started yet
  lag as (
    select g.name as agent, b.t, coalesce(max(extract(epoch from b.t - d.event_created_at)), 0) as lag_s
      from public.agents g
      cross join generate_series(date_trunc('minute', now()) - interval '60 minutes', now(),
                                 interval '1 minute') b(t)
      left join public.event_deliveries d
        on d.agent = g.name and d.created_at <= b.t and d.created_at >= now() - interval '120 minutes'
       and coalesce(d.first_started_at, 'infinity') > b.t and d.status <> 'blocked'
     where g.enabled
     group by g.name, b.t),
  alerts as (
    select x.agent, x.project_id, x.reasons, x.raised_at, x.resolved_at from public.agent_alerts x
     order by x.raised_at desc limit 20),
  rings as (
    select x.agent, x.id, x.event_type, x.ring_count, x.rung_at, x.last_error from public.event_deliveries x
     where x.status in ('pending', 'failed', 'dead') and x.ring_count > 0 and x.attempts = 0
       and x.rung_at < now() - interval '10 seconds'
     order by x.rung_at desc limit 20)
  select jsonb_build_object(
    'stats', (select coalesce(jsonb_agg(to_jsonb(stats) order by stats.agent), '[]'::jsonb) from stats),
    'lag_history', (select coalesce(jsonb_agg(to_jsonb(lag) order by lag.agent, lag.t), '[]'::jsonb) from lag),
    'alerts', (select coalesce(jsonb_agg(to_jsonb(alerts) order by alerts.raised_at desc), '[]'::jsonb) from alerts),
    'doorbell_errors', (select coalesce(jsonb_agg(to_jsonb(rings) order by rings.rung_at desc), '[]'::jsonb)
                          from rings))
$$;

create or replace function public.dashboard_success_metrics(p_window_s double precision default 86400) returns jsonb
language sql stable security invoker set search_path = public, pg_temp as $$
  with w as (select public.dashboard_since(p_window_s) as since)
  select jsonb_build_object(
    'react', (select jsonb_build_object('p95', percentile_cont(0.95) within group (order by extract(epoch from
                d.first_started_at - d.event_created_at) * 1000), 'n', count(*))
                from public.event_deliveries d, w where d.created_at >= w.since and d.first_started_at is not null),
    'work', (select jsonb_build_object('p95', percentile_cont(0.95) within group (order by extract(epoch from
               a.finished_at - a.started_at) * 1000), 'n', count(*))
               from public.delivery_attempts a, w where a.started_at >= w.since and a.outcome = 'succeeded'),
    'fan', (select jsonb_build_object('peak', max(n), 'p50', percentile_cont(0.5) within group (order by n)) from (
              select count(*) as n from public.event_deliveries d, w where d.created_at >= w.since
                 and d.status <> 'blocked' group by d.event_id) x),
    'themes', (select jsonb_build_object(
                 'high', count(*) filter (where t.threshold_reached_at is not null),
                 'specced', count(*) filter (where t.threshold_reached_at is not null and exists (
                    select 1 from public.specs s where s.theme_id = t.id)))
                 from public.themes t),
    'dup', (select jsonb_build_object('p95', percentile_cont(0.95) within group (order by extract(epoch from
              f.created_at - r.created_at) * 1000), 'n', count(*))
              from public.events f join public.events r on r.id = (f.metadata ->> 'correlation_id')::uuid, w
             where f.type = 'duplicate.found' and f.created_at >= w.since),
    'useful', (select jsonb_build_object('n', count(*), 'useful', count(*) filter (where v.verdict = 'useful'))
                 from public.notification_feedback v, w where v.created_at >= w.since))
$$;

select public.disable_jit();
