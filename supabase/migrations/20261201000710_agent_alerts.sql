-- Agent health alerts, evaluated on the sweep's schedule (run_periodic): per
-- agent and project, a failure rate, dead letters, an open circuit or a lag
-- over its threshold raises agent.alert_raised once per incident, and
-- agent.alert_resolved once when none holds any more. Thresholds are global
-- (backbone_config) with per-project overrides in projects.settings (same keys).

alter table public.backbone_config
  add column alert_interval_seconds double precision not null default 10 check (alert_interval_seconds >= 0),
  add column alert_window_seconds double precision not null default 900 check (alert_window_seconds > 0),
  add column alert_sample_size integer not null default 20 check (alert_sample_size >= 1),
  add column alert_min_attempts integer not null default 5 check (alert_min_attempts >= 1),
  add column alert_failure_rate double precision not null default 0.5 check (alert_failure_rate between 0 and 1),
  add column alert_dead_letters integer not null default 1 check (alert_dead_letters >= 1),
  add column alert_lag_seconds double precision not null default 300 check (alert_lag_seconds > 0);

create table public.agent_alerts (
  id uuid primary key default gen_random_uuid(),
  agent text not null references public.agents (name) on update cascade on delete cascade,
  project_id uuid not null,
  reasons text[] not null,
  details jsonb not null default '{}'::jsonb,
  raised_at timestamptz not null default now(),
  resolved_at timestamptz,
  raised_event_id uuid,
  resolved_event_id uuid
);
-- One open incident per agent and project.
create unique index agent_alerts_open_idx on public.agent_alerts (agent, project_id) where resolved_at is null;
create index agent_alerts_project_idx on public.agent_alerts (project_id, raised_at desc);
alter table public.agent_alerts enable row level security;
create policy agent_alerts_read on public.agent_alerts for select to authenticated
  using (public.is_project_member(project_id));
revoke insert, update, delete, truncate, references, trigger on public.agent_alerts from anon, authenticated;
revoke all on public.agent_alerts from anon;

-- When alerts were last evaluated (run_periodic runs every sweep; alerts less often).
create table public.agent_alert_runs (
  id boolean primary key default true check (id),
  evaluated_at timestamptz
);
insert into public.agent_alert_runs default values;
alter table public.agent_alert_runs enable row level security;
revoke all on public.agent_alert_runs from anon, authenticated;

-- What each (agent, project) looks like now, with its thresholds and the
-- reasons it is unhealthy (empty when healthy). Pairs with recent activity,
-- unfinished work or an open alert.
create function public.agent_health_now() returns table (
  agent text, project_id uuid, reasons text[], details jsonb)
language sql stable security definer set search_path = public, pg_temp as $$
  with c as (select * from public.backbone_config),
  scope as (
    select distinct d.agent, d.project_id from public.event_deliveries d, c
     where d.project_id is not null
       and (d.updated_at >= now() - make_interval(secs => c.alert_window_seconds)
            or d.status in ('pending', 'running', 'failed', 'parked'))
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
  measured as (
    select l.*, fr.n as attempts, fr.bad as failures,
           (select count(*) from public.event_deliveries d
             where d.agent = l.agent and d.project_id = l.project_id and d.status = 'dead'
               and d.finished_at >= now() - make_interval(secs => l.window_s)) as dead,
           (select coalesce(extract(epoch from now() - min(d.event_created_at)), 0)
              from public.event_deliveries d
             where d.agent = l.agent and d.project_id = l.project_id
               and d.status in ('pending', 'running', 'failed', 'parked')) as lag_s
      from limits l
      cross join lateral (
        select count(*) as n, count(*) filter (where x.outcome in ('failed', 'dead', 'expired')) as bad
          from (select a.outcome from public.delivery_attempts a
                  join public.event_deliveries d on d.id = a.delivery_id
                 where d.agent = l.agent and d.project_id = l.project_id and a.outcome <> 'running'
                   and a.started_at >= now() - make_interval(secs => l.window_s)
                 order by a.started_at desc limit l.sample) x) fr
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
$$;

-- An alert's event, with an id derived from the alert (a rerun publishes nothing twice).
create function public.publish_alert_event(p_alert public.agent_alerts, p_type text, p_payload jsonb) returns uuid
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_id uuid := md5(p_alert.id::text || ':' || p_type)::uuid;
begin
  insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata)
  values (v_id, p_type, 'agent_alert', p_alert.id, p_payload,
          jsonb_build_object('project_id', p_alert.project_id, 'producer', 'db.alerts', 'timestamp', now()))
  on conflict (id) do nothing;
  return v_id;
end
$$;

create function public.evaluate_agent_alerts(p_force boolean default false) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  h record;
  v_open public.agent_alerts;
  v_raised integer := 0;
  v_resolved integer := 0;
begin
  -- At most one evaluation per interval, and never two at once.
  update public.agent_alert_runs r set evaluated_at = now()
    from public.backbone_config c
   where p_force or r.evaluated_at is null
      or r.evaluated_at <= now() - make_interval(secs => c.alert_interval_seconds);
  if not found then
    return jsonb_build_object('skipped', true);
  end if;
  for h in select * from public.agent_health_now() loop
    select * into v_open from public.agent_alerts a
     where a.agent = h.agent and a.project_id = h.project_id and a.resolved_at is null for update;
    if cardinality(h.reasons) > 0 and v_open.id is null then
      insert into public.agent_alerts (agent, project_id, reasons, details)
      values (h.agent, h.project_id, h.reasons, h.details) returning * into v_open;
      update public.agent_alerts set raised_event_id = public.publish_alert_event(v_open, 'agent.alert_raised',
          jsonb_build_object('alert_id', v_open.id, 'agent', h.agent, 'project_id', h.project_id,
                             'reasons', to_jsonb(h.reasons)) || h.details)
       where id = v_open.id;
      v_raised := v_raised + 1;
    elsif cardinality(h.reasons) > 0 then
      update public.agent_alerts set reasons = h.reasons, details = h.details where id = v_open.id;
    elsif v_open.id is not null then
      update public.agent_alerts set resolved_at = now() where id = v_open.id returning * into v_open;
      update public.agent_alerts set resolved_event_id = public.publish_alert_event(v_open, 'agent.alert_resolved',
          jsonb_build_object('alert_id', v_open.id, 'agent', h.agent, 'project_id', h.project_id,
                             'reasons', to_jsonb(v_open.reasons),
                             'duration_seconds', round(extract(epoch from v_open.resolved_at - v_open.raised_at)::numeric, 1))
                             || h.details)
       where id = v_open.id;
      v_resolved := v_resolved + 1;
    end if;
  end loop;
  return jsonb_build_object('raised', v_raised, 'resolved', v_resolved);
end
$$;
revoke execute on function public.agent_health_now() from public, anon, authenticated;
revoke execute on function public.publish_alert_event(public.agent_alerts, text, jsonb) from public, anon, authenticated;
revoke execute on function public.evaluate_agent_alerts(boolean) from public, anon, authenticated;
grant execute on function public.agent_health_now(), public.publish_alert_event(public.agent_alerts, text, jsonb),
  public.evaluate_agent_alerts(boolean) to service_role;

-- The notify agent tells the team on Slack.
update public.agents
   set event_types = array(select distinct unnest(event_types || array['agent.alert_raised', 'agent.alert_resolved'])
                            order by 1)
 where name = 'notify' and not ('*' = any (event_types));  -- '*' already hears them

-- Keeps what run_periodic did (the sweep) and adds the alerts.
create or replace function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object('rung', public.sweep_deliveries(p_limit), 'alerts', public.evaluate_agent_alerts());
end
$$;
revoke execute on function public.run_periodic(integer) from public, anon, authenticated;
grant execute on function public.run_periodic(integer) to service_role;
