-- A ring wakes the agents downstream of the one it rings (issue: production
-- path on Supabase).
--
-- Measured with the pg_net stand-in at 10 posts/s (a timeline of deliveries
-- against pg_net's batches): theme's and priority's slow reactions (2.0-2.7 s,
-- theme's p95 over 2 s in every run) came in two clusters of the same kind.
-- When a stream starts, and when a batch starts without a drain of theirs in
-- it (theme's drain ended with its budget while nothing was due, so it rang
-- nothing), sentiment is rung and runs, and only then do theme's and
-- priority's deliveries exist. Their rings wait in pg_net's queue for the
-- running batch to end (batch_starves, 0.5-1 s) and for pg_net's pause after
-- it (about 1 s), and theme then runs the posts that piled up one at a time.
--
-- Now, under a batching doorbell, a ring of an agent also wakes the agents
-- subscribed to what it publishes for nearly every delivery
-- (agents.publishes) that have no drainer, no ring on its way and no wake on
-- its way (of that project, for a per-project agent): one request in the same
-- batch, whose body is the rung delivery's event. The woken agent has no
-- delivery for that event; claim_delivery() answers 'woken' (instead of 404,
-- 'not_subscribed') while the wake is recorded in agent_wakes, and the
-- request drains that project: it lingers from its start (shared/drain.py),
-- so it takes the upstream agent's output as it is published instead of a
-- batch and a pause later. The wake's row is taken by its request, or
-- expires after the coalescing hold; until then no other wake is sent to the
-- agent for that project. A wake covers nothing: the agent's own new
-- deliveries are rung as before (a wake that never arrives delays nothing),
-- and batch_starves() sees them as before. An agent whose circuit is open, or
-- that is disabled, off or without an endpoint, is not woken.
-- backbone_config.wake_downstream = false turns this off.

alter table public.agents
  -- Event types this agent publishes for nearly every delivery: a ring of it wakes their subscribers.
  add column publishes text[] not null default '{}';

alter table public.backbone_config
  add column wake_downstream boolean not null default true;

-- What an agent publishes for nearly every delivery: the wakes that pay. An
-- agent that publishes only now and then (theme's threshold, duplicate's
-- match, competitive's mention) would wake its subscribers for nothing on
-- most rings, and each woken request polls the ledger while it lingers.
update public.agents set publishes = array['sentiment.analyzed'] where name = 'sentiment';
update public.agents set publishes = array['priority.calculated'] where name = 'priority';

-- Wakes on their way: one per agent and project at a time.
create table public.agent_wakes (
  agent text not null references public.agents (name) on delete cascade,
  project_id uuid not null,
  until timestamptz not null,  -- past this, the wake counts no more (and another may be sent)
  primary key (agent, project_id)
);
alter table public.agent_wakes enable row level security;  -- no policy: the backbone's own

-- One Supabase database-webhook POST through pg_net (its request id): the
-- body and headers ring_doorbell sent since 20261128000200_events.sql, now
-- shared with the wakes. Dynamic: net.http_post may not exist (the NOTIFY
-- doorbell) when this is created.
create function public.post_webhook(p_url text, p_record jsonb, p_secret text, p_timeout_ms integer)
returns bigint
language plpgsql set search_path = public, pg_temp as $$
declare
  v_request bigint;
begin
  execute 'select net.http_post(url := $1, body := $2, headers := $3, timeout_milliseconds := $4)'
    into v_request
    using p_url,
          jsonb_build_object('type', 'INSERT', 'table', 'events', 'schema', 'public',
                             'record', p_record, 'old_record', null),
          jsonb_build_object('Content-Type', 'application/json')
            || case when p_secret is null then '{}'::jsonb
                    else jsonb_build_object('Authorization', 'Bearer ' || p_secret) end,
          p_timeout_ms;
  return v_request;
end
$$;

-- Wake the agents downstream of these rung deliveries' agents; how many were rung.
create function public.wake_downstream(p_ids bigint[], p_secret text, p_cfg public.backbone_config)
returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_n integer := 0;
  r record;
begin
  if not p_cfg.wake_downstream or p_ids is null or cardinality(p_ids) = 0 then
    return 0;
  end if;
  for r in
    select distinct on (b.name, d.project_id) b.name, b.endpoint_url, b.timeout_ms, b.serialize_by_project,
           d.project_id, d.event_id
      from public.event_deliveries d
      join public.agents a on a.name = d.agent and cardinality(a.publishes) > 0
      join public.agents b on b.name <> a.name and b.enabled and b.mode <> 'off'
                          and b.circuit_state <> 'open' and b.endpoint_url is not null
     where d.id = any (p_ids) and d.project_id is not null
       -- one that hears the rung event itself has its own delivery of it, rung or covered as any
       and not exists (select 1 from public.event_deliveries o where o.event_id = d.event_id and o.agent = b.name)
       and exists (select 1 from unnest(a.publishes) t(type)
                    where public.subscribes(b.event_types, t.type, b.name, a.name))
     order by b.name, d.project_id, d.id desc
  loop
    continue when exists (
      select 1 from public.agent_drainers l
       where l.agent = r.name and l.until > now()
         and (not r.serialize_by_project or l.project_id = r.project_id)
         and (l.delivery_id is null  -- a drainer, or a ring whose delivery nobody has taken yet
              or exists (select 1 from public.event_deliveries p where p.id = l.delivery_id and p.status = 'pending')));
    insert into public.agent_wakes as w (agent, project_id, until)
    values (r.name, r.project_id,
            now() + make_interval(secs => (p_cfg.drain_budget_ms + p_cfg.coalesced_ring_after_ms) / 1000.0))
    on conflict (agent, project_id) do update set until = excluded.until where w.until <= now();
    continue when not found;  -- a wake is on its way already
    perform public.post_webhook(r.endpoint_url, (select to_jsonb(e) from public.events e where e.id = r.event_id),
                                p_secret, r.timeout_ms);
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;

-- The doorbell, as in 20261202000601_outstanding_rings.sql, waking the
-- downstream agents of what it rang through pg_net.
create or replace function public.ring_doorbell(p_ids bigint[]) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_cfg public.backbone_config;
  v_mode text;
  v_net boolean := to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is not null;
  v_secret text;
  v_rung bigint[] := '{}';
  v_requests bigint[] := '{}';  -- pg_net's request id per rung delivery (null: none)
  v_request bigint;
  r record;
begin
  if p_ids is null or cardinality(p_ids) = 0 then
    return 0;
  end if;
  select * into v_cfg from public.backbone_config;
  v_mode := case when v_cfg.doorbell = 'auto' then (case when v_net then 'pg_net' else 'notify' end)
                 else v_cfg.doorbell end;
  if v_mode in ('pg_net', 'both') and v_net then
    v_secret := public.agent_secret();
  end if;
  for r in
    select d.id, d.agent, d.event_id, a.endpoint_url, a.timeout_ms, to_jsonb(e) as record
    from public.event_deliveries d
    join public.agents a on a.name = d.agent
    join public.events e on e.id = d.event_id
    where d.id = any (p_ids) and a.mode <> 'off'
  loop
    v_request := null;
    if v_mode in ('notify', 'both') then
      perform pg_notify('signalsloop_doorbell', json_build_object(
        'delivery_id', r.id, 'event_id', r.event_id, 'agent', r.agent)::text);
    end if;
    if v_mode in ('pg_net', 'both') and v_net and r.endpoint_url is not null then
      v_request := public.post_webhook(r.endpoint_url, r.record, v_secret, r.timeout_ms);
    end if;
    if v_mode in ('notify', 'both') or v_request is not null then
      v_rung := v_rung || r.id;
      v_requests := v_requests || v_request;
    end if;
  end loop;
  update public.event_deliveries d
     set rung_at = case when x.id is null then d.rung_at else clock_timestamp() end,
         ring_count = d.ring_count + (x.id is not null)::integer,
         last_request_id = coalesce(x.request, d.last_request_id),
         ring_after = case when d.status = 'pending'
                           then now() + make_interval(secs => v_cfg.redelivery_after_seconds)
                           else greatest(d.ring_after, now() + make_interval(secs => v_cfg.redelivery_after_seconds))
                      end
    from unnest(p_ids) as i(id)
    left join unnest(v_rung, v_requests) as x(id, request) on x.id = i.id
   where d.id = i.id;
  if v_mode in ('pg_net', 'both') and v_net and v_cfg.wake_downstream then
    perform public.wake_downstream(array(select x.id from unnest(v_rung, v_requests) as x(id, request)
                                           where x.request is not null), v_secret, v_cfg);
  end if;
  return cardinality(v_rung);
end
$$;

-- A ring's own claim, as in 20261202000601_outstanding_rings.sql, and a
-- wake's: an agent with no delivery for the event, woken for the event's
-- project (a row in agent_wakes, which this takes), answers 'woken' and
-- drains that project. Any other event it has no delivery for is still
-- 'not_subscribed' (404).
create or replace function public.claim_delivery(p_event_id uuid, p_agent text, p_worker text default null)
returns setof public.delivery_claim
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
  a public.agents;
  t record;
  v_none public.delivery_claim;
  v_project uuid;
  v_woken boolean := false;
begin
  select * into a from public.agents where name = p_agent;
  select * into d from public.event_deliveries x
   where x.event_id = p_event_id and x.agent = p_agent for update;
  if not found then
    select (e.metadata ->> 'project_id')::uuid into v_project from public.events e where e.id = p_event_id;
    if not found then
      v_none.outcome := 'unknown_event';
    else
      delete from public.agent_wakes w
       where w.agent = p_agent and w.project_id = v_project and w.until > now()
      returning true into v_woken;
      v_none.outcome := case when v_woken then 'woken' else 'not_subscribed' end;
      if v_woken then
        select v_project, a.serialize_by_project, least(c.drain_budget_ms, a.timeout_ms / 2), false
          into v_none.project_id, v_none.serialize_by_project, v_none.drain_budget_ms, v_none.shadow
          from public.backbone_config c;
      end if;
    end if;
    return next v_none;
    return;
  end if;
  -- The ring has arrived: it covers its agent no more, whatever it finds
  -- (a busy project, a delivery a drainer took first); if it drains, it
  -- registers as a drainer at its first claim.
  delete from public.agent_drainers where delivery_id = d.id;
  if d.status in ('succeeded', 'dead', 'blocked') then
    return query select * from public.claim_result('finished', d.id, null, d.attempts, d.max_attempts, p_agent);
    return;
  end if;
  if d.status = 'running' and d.lease_until > now() then
    return query select * from public.claim_result('duplicate', d.id, null, d.attempts, d.max_attempts, p_agent);
    return;
  end if;
  if d.status = 'failed' and d.next_attempt_at > now() then
    return query select * from public.claim_result('not_due', d.id, null, d.attempts, d.max_attempts, p_agent);
    return;
  end if;
  if a.mode = 'off' or not a.enabled then
    -- A ring already in flight when the agent was turned off: the delivery waits.
    return query select * from public.claim_result('off', d.id, null, d.attempts, d.max_attempts, p_agent);
    return;
  end if;
  select * into t from public.take_claim(d, p_worker, true);
  return query select * from public.claim_result(t.outcome, t.delivery_id, t.claim_token, t.attempt,
                                                 t.max_attempts, p_agent);
end
$$;

select public.lock_down_project_objects(array['agent_wakes']);
revoke execute on function public.wake_downstream(bigint[], text, public.backbone_config),
  public.post_webhook(text, jsonb, text, integer) from public, anon, authenticated, service_role;
revoke all on public.agent_wakes from anon, authenticated, service_role;
grant select on public.agent_wakes to service_role;
select public.disable_jit();
