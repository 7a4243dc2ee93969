-- Outstanding rings count as drainers (issue: production path on Supabase).
--
-- Measured with the pg_net stand-in at 10 posts/s (a timeline of drainers,
-- due deliveries and pg_net's queue, sampled every 0.2 s):
--   * between two batches (the batch's tail, pg_net's 1 s pause, and the
--     time until the next batch's first claims, about 2-3 s of every 7 s) no
--     agent had a drainer, so every new delivery was rung: about 240 rings
--     per cycle, more than pg_net's 200 per batch, and its queue grew to 540;
--   * a delivery skipped because of a drainer got ring_after = now() + 2 s,
--     and under a backlog the sweep rang every such delivery again: hundreds
--     of rings whose requests found their delivery already taken.
-- Each of those rings still cost an HTTP request, a claim and a seat in the
-- batch, and the batch (which pg_net waits for) grew longer with them.
--
-- Now:
--   * a ring sent by the fan-out is recorded in agent_drainers (with the
--     delivery it rang) until drain_budget_ms + coalesced_ring_after_ms; until
--     its request arrives (claim_delivery removes the row) and while its
--     delivery is still pending, it counts as a drainer on its way: the
--     request it wakes claims its delivery and drains the agent's others;
--   * a skipped delivery's fallback ring_after is that same hold (the time a
--     ring or a drainer has to reach it), not 2 s. A drainer that ends hands
--     on as before (end_drain rings the next due one when out of time, and
--     claims once more when idle); a ring that never arrives (401, refused)
--     stops counting when its hold ends, and the sweep rings what it left.
-- A fan-out may still ring more than needed (two fan-outs that do not see
-- each other's rings), never less: coalescing only ever skips a ring when a
-- live drainer or a ring still on its way covers the agent (the project, for
-- a per-project agent).

alter table public.agent_drainers
  add column delivery_id bigint;  -- set: a ring on its way for this delivery; null: a draining request
create index agent_drainers_delivery_idx on public.agent_drainers (delivery_id) where delivery_id is not null;

-- Which of these new deliveries need a ring (as in 20261202000001, plus the
-- rings on their way); records the rings it asks for.
create or replace function public.rings_needed(p_ids bigint[]) returns bigint[]
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_cfg public.backbone_config;
  v_hold interval;
  v_agents text[];
  v_skip bigint[];
  v_ring bigint[];
begin
  if p_ids is null or cardinality(p_ids) = 0 then
    return p_ids;
  end if;
  select * into v_cfg from public.backbone_config;
  v_hold := make_interval(secs => (v_cfg.drain_budget_ms + v_cfg.coalesced_ring_after_ms) / 1000.0);
  -- The agents first, as an array: a semi-join on event_deliveries here was
  -- planned as a scan of every delivery of each agent (it grew with history).
  select array_agg(distinct d.agent) into v_agents from public.event_deliveries d where d.id = any (p_ids);
  -- The live drainers counted below are locked until this commits (see 20261202000001).
  perform 1 from public.agent_drainers x
    where x.agent = any (v_agents) and x.until > now() and x.delivery_id is null
      for share of x;
  -- Skipped: an agent covered by max_drainers (a per-project agent: one, of
  -- that project); or covered at all while its due backlog is small
  -- (BACKLOG_PER_DRAINER each): another request would find nothing to do
  -- (measured: most rings of an agent one drainer kept up with arrived to
  -- find their delivery already run).
  select array_agg(c.id) into v_skip
    from (select d.id, a.serialize_by_project as per_project,
                 (select count(*) from public.agent_drainers l
                   where l.agent = d.agent and l.until > now()
                     and (not a.serialize_by_project or l.project_id = d.project_id)
                     and (l.delivery_id is null  -- a drainer, or a ring whose delivery nobody has taken yet
                          or exists (select 1 from public.event_deliveries r
                                      where r.id = l.delivery_id and r.status = 'pending'))) as covering,
                 (select count(*) from (select 1 from public.event_deliveries b
                                         where b.agent = d.agent and b.status = 'pending'
                                         limit 10 * v_cfg.max_drainers) q) as backlog
            from public.event_deliveries d
            join public.agents a on a.name = d.agent
           where d.id = any (p_ids)) c
   where c.covering >= case when c.per_project then 1 else v_cfg.max_drainers end
      or (c.covering > 0 and c.backlog <= 10 * c.covering);
  -- A skipped delivery keeps the ring_after the fan-out gave it: now() plus
  -- the hold, the time a drainer or a ring has to reach it before the sweep
  -- rings it (one update fewer per delivery; ring_doorbell moves it for the rung).
  v_ring := array(select unnest(p_ids) except select unnest(coalesce(v_skip, '{}')));
  insert into public.agent_drainers (drainer, agent, project_id, until, delivery_id)
  select gen_random_uuid(), d.agent, d.project_id, now() + v_hold, d.id
    from public.event_deliveries d
    join public.agents a on a.name = d.agent
   where d.id = any (v_ring) and a.mode <> 'off';
  -- Rings whose hold ended a minute ago go (end_drain clears them too, but
  -- with drain_budget_ms = 0 nothing drains); skip locked: never a wait here.
  delete from public.agent_drainers x
   where x.ctid in (select o.ctid from public.agent_drainers o
                     where o.agent = any (v_agents) and o.until < now() - interval '1 minute'
                     limit 100 for update skip locked);
  return v_ring;
end
$$;

-- Fan-out, as in 20261202000001_ring_coalescing.sql; only the insert changed:
-- a new delivery's ring_after starts at the coalescing hold (see rings_needed).
create or replace function public.fan_out_event() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_cfg public.backbone_config;
  v_depth integer := coalesce((new.metadata ->> 'depth')::integer, 0);
  v_chain bigint;
  v_block text;
  v_ids bigint[];
begin
  select * into v_cfg from public.backbone_config;
  if v_depth > v_cfg.max_depth then
    v_block := format('loop protection: depth %s exceeds max_depth %s', v_depth, v_cfg.max_depth);
  else
    select count(*) into v_chain from public.events
     where metadata ->> 'correlation_id' = new.metadata ->> 'correlation_id';
    if v_chain > v_cfg.max_events_per_chain then
      v_block := format('loop protection: chain %s has %s events, more than max_events_per_chain %s',
                        new.metadata ->> 'correlation_id', v_chain, v_cfg.max_events_per_chain);
    end if;
  end if;
  with ins as (
    insert into public.event_deliveries
      (event_id, agent, event_type, project_id, status, max_attempts, event_created_at, last_error, finished_at,
       ring_after)
    select new.id, a.name, new.type, (new.metadata ->> 'project_id')::uuid,
           case when v_block is null then 'pending' else 'blocked' end,
           a.max_attempts, new.created_at, v_block,
           case when v_block is null then null else now() end,
           now() + make_interval(secs => (v_cfg.drain_budget_ms + v_cfg.coalesced_ring_after_ms) / 1000.0)
      from public.agents a
     where a.enabled and public.subscribes(a.event_types, new.type, a.name, new.metadata ->> 'producer')
    on conflict (event_id, agent) do nothing
    returning id, status
  )
  select array_agg(id) filter (where status = 'pending') into v_ids from ins;
  if v_block is not null then
    raise warning '% (event %, type %)', v_block, new.id, new.type;
  end if;
  perform public.ring_doorbell(public.rings_needed(v_ids));
  return null;
end
$$;

-- The doorbell, as in 20261201000110_drain.sql, writing each rung delivery
-- once instead of three times (its pg_net request id, then its ring count,
-- then its ring_after: every write of event_deliveries is a new row version
-- in ten indexes). A pending delivery's ring_after becomes now() plus
-- redelivery_after_seconds (the fan-out's hold is for skipped ones); others
-- keep a later one (a lease, a retry's time), as before.
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
      execute 'select net.http_post(url := $1, body := $2, headers := $3, timeout_milliseconds := $4)'
        into v_request
        using r.endpoint_url,
              jsonb_build_object('type', 'INSERT', 'table', 'events', 'schema', 'public',
                                 'record', r.record, 'old_record', null),
              jsonb_build_object('Content-Type', 'application/json')
                || case when v_secret is null then '{}'::jsonb
                        else jsonb_build_object('Authorization', 'Bearer ' || v_secret) end,
              r.timeout_ms;
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
  return cardinality(v_rung);
end
$$;

-- A ring's own claim, as in 20261201000110_drain.sql, now also removing
-- the ring's row. Measured: a per-project agent's ring answered 'busy' (its
-- project's queue held by a drainer) left its delivery pending, so the row
-- went on covering the project for its whole hold after that drainer ended,
-- and the project's next deliveries waited up to 7 s for the sweep.
create or replace function public.claim_delivery(p_event_id uuid, p_agent text, p_worker text default null)
returns setof public.delivery_claim
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
  a public.agents;
  t record;
  v_none public.delivery_claim;
begin
  select * into a from public.agents where name = p_agent;
  select * into d from public.event_deliveries x
   where x.event_id = p_event_id and x.agent = p_agent for update;
  if not found then
    v_none.outcome := case when not exists (select 1 from public.events where id = p_event_id)
                           then 'unknown_event' else 'not_subscribed' end;
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

select public.lock_down_project_objects(array['rings_needed']);
revoke execute on function public.rings_needed(bigint[]) from service_role;
