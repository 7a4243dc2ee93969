-- Plans that stay on recent rows on top of a long history (issue 10).
--
-- Measured with `signalsloop bench --history 1000000` and pg_stat_statements:
-- the steady load was slow on the history because claim_next's fair-share
-- skip scan read event_deliveries_due_idx (ring_after order, every agent's
-- open deliveries) instead of event_deliveries_due_by_project_idx (agent,
-- project, id): 843 buffers a call instead of 18 on the empty database, and
-- growing with every finished delivery until vacuum. A vacuum run while no
-- delivery is open leaves these partial indexes with reltuples = 0, and the
-- planner then costs a full scan of any of them at one page; on a small table
-- autovacuum runs every minute and corrects that, on a table of millions of
-- rows (scale factor 0.2) it does not run for hours. So the choice must not
-- depend on the statistics: the sweep's index now also requires
-- `ring_after is not null`, which the sweep's `ring_after <= now()` implies
-- (a strict operator) and the claims' queries do not, so claims can only use
-- the index that leads with their agent.
drop index public.event_deliveries_due_idx;
create index event_deliveries_due_idx on public.event_deliveries (ring_after)
  where status in ('pending', 'running', 'failed', 'parked') and ring_after is not null;

-- The per-agent index of open deliveries now holds parked ones too, so that
-- what reads an agent's open work without a ring_after condition (agent
-- health's lag, the dashboard) has a partial index to read; claim_next's and
-- ring_next's conditions (pending, failed, running) still imply it.
drop index public.event_deliveries_due_by_project_idx;
create index event_deliveries_due_by_project_idx on public.event_deliveries (agent, project_id, id)
  where status in ('pending', 'failed', 'running', 'parked');

-- collect_ring_errors (every run_periodic where pg_net is installed) finds the
-- rings waiting for pg_net's answer by last_request_id: a partial index of
-- those few rows instead of a scan of every delivery.
create index event_deliveries_request_idx on public.event_deliveries (last_request_id)
  where last_request_id is not null;

-- Agent health, as in 20261201000710_agent_alerts.sql, with the failure rate
-- computed in one pass over the window's attempts for all pairs: it read the
-- window's attempts once per (agent, project) pair (1.4 s every 10 s with 21
-- pairs after 3,300 deliveries, in the run_periodic transaction that holds
-- the sweep's row locks). Same result: each pair's last alert_sample_size
-- finished attempts started in the window.
create or replace function public.agent_health_now() returns table (
  agent text, project_id uuid, reasons text[], details jsonb)
language plpgsql stable security definer set search_path = public, pg_temp as $fn$
begin
  -- Planned on every call with the window's start known, so that the
  -- planner sees how few attempts the window holds (a nested loop into
  -- event_deliveries by primary key, never a scan of either table).
  return query execute $q$
  with c as (select * from public.backbone_config),
  scope as (
    select distinct d.agent, d.project_id from public.event_deliveries d
     where d.project_id is not null
       and (d.updated_at >= $1 or d.status in ('pending', 'running', 'failed', 'parked'))
    union
    select a.agent, a.project_id from public.agent_alerts a where a.resolved_at is null
  ),
  limits as (
    select s.agent, s.project_id, g.circuit_state,
           coalesce((p.settings ->> 'alert_failure_rate')::float8, c.alert_failure_rate) as max_rate,
           coalesce((p.settings ->> 'alert_min_attempts')::int, c.alert_min_attempts) as min_attempts,
           coalesce((p.settings ->> 'alert_dead_letters')::int, c.alert_dead_letters) as max_dead,
           coalesce((p.settings ->> 'alert_lag_seconds')::float8, c.alert_lag_seconds) as max_lag,
           c.alert_window_seconds as window_s, c.alert_sample_size as sample
      from scope s cross join c
      join public.agents g on g.name = s.agent
      left join public.projects p on p.id = s.project_id
  ),
  -- Each pair's last alert_sample_size finished attempts in the window,
  -- counted in one pass over the window's attempts (it was one pass per pair).
  recent as (
    select r.agent, r.project_id, count(*) as n,
           count(*) filter (where r.outcome in ('failed', 'dead', 'expired')) as bad
      from (select d.agent, d.project_id, a.outcome,
                   row_number() over (partition by d.agent, d.project_id order by a.started_at desc) as rn
              from public.delivery_attempts a
              join public.event_deliveries d on d.id = a.delivery_id
             where a.outcome <> 'running' and d.project_id is not null and a.started_at >= $1) r
      cross join c
     where r.rn <= c.alert_sample_size
     group by r.agent, r.project_id),
  measured as (
    select l.*, coalesce(fr.n, 0) as attempts, coalesce(fr.bad, 0) as failures,
           (select count(*) from public.event_deliveries d
             where d.agent = l.agent and d.project_id = l.project_id and d.status = 'dead'
               and d.finished_at >= now() - make_interval(secs => l.window_s)) as dead,
           (select coalesce(extract(epoch from now() - min(d.event_created_at)), 0)
              from public.event_deliveries d
             where d.agent = l.agent and d.project_id = l.project_id
               and d.status in ('pending', 'running', 'failed', 'parked')) as lag_s
      from limits l
      left join recent fr on fr.agent = l.agent and fr.project_id = l.project_id
  )
  select m.agent, m.project_id,
         array_remove(array[
           case when m.attempts >= m.min_attempts and m.failures::float8 / m.attempts >= m.max_rate
                then 'failure_rate' end,
           case when m.dead >= m.max_dead then 'dead_letters' end,
           case when m.circuit_state = 'open' then 'circuit_open' end,
           case when m.lag_s >= m.max_lag then 'lag' end], null),
         jsonb_build_object('attempts', m.attempts, 'failures', m.failures,
                            'failure_rate', case when m.attempts > 0 then round(m.failures::numeric / m.attempts, 3) end,
                            'dead_letters', m.dead, 'lag_seconds', round(m.lag_s::numeric, 1),
                            'circuit_state', m.circuit_state,
                            'thresholds', jsonb_build_object('failure_rate', m.max_rate, 'min_attempts', m.min_attempts,
                                                             'dead_letters', m.max_dead, 'lag_seconds', m.max_lag))
    from measured m
  $q$ using now() - make_interval(secs => (
    select c.alert_window_seconds from public.backbone_config c));
end
$fn$;
revoke execute on function public.agent_health_now() from public, anon, authenticated, service_role;
