-- Coalesced doorbells (issue: production path on Supabase). Measured with the
-- pg_net stand-in at 10 posts/s: 3 of 4 rings found their delivery already
-- run by a draining request of the same agent, yet each still cost an HTTP
-- request, a function's claim and a seat in pg_net's batch.
--
-- Now a draining request registers itself in public.agent_drainers at its
-- first claim. While an agent has max_drainers registered drainers (one, of
-- that project, for a per-project agent), a new delivery is not rung: a
-- drainer will claim it. The hand-over is exact, not timed:
--   * the fan-out reads the drainers FOR SHARE, so a drainer's end_drain()
--     (a DELETE) waits until every fan-out that counted on it has committed;
--   * after end_drain() the request claims once more, and so sees every
--     delivery whose ring was skipped because of it;
--   * a fan-out after the DELETE finds no drainer and rings.
-- A drainer that dies without end_drain() leaves a row that expires (`until`,
-- its budget and a margin); deliveries skipped meanwhile get a short
-- ring_after, so the sweep rings them within seconds. Rings from the sweep,
-- replay and ring_next are never coalesced.

create table public.agent_drainers (
  drainer uuid primary key,
  agent text not null references public.agents (name) on delete cascade,
  project_id uuid,  -- the project a per-project agent drains; null: any project
  until timestamptz not null  -- past this, a drainer that never ended counts no more
);
create index agent_drainers_agent_idx on public.agent_drainers (agent, until);
alter table public.agent_drainers enable row level security;  -- no policy: the backbone's own

alter table public.backbone_config
  -- At most this many drainers of one agent make a new delivery's ring
  -- unnecessary (a per-project agent: one drainer of that project).
  add column max_drainers integer not null default 2 check (max_drainers >= 1),
  -- A skipped ring's fallback: the sweep rings the delivery after this long
  -- if no drainer took it.
  add column coalesced_ring_after_ms integer not null default 2000 check (coalesced_ring_after_ms >= 0);

-- Which of these new deliveries need a ring: those of an agent without
-- enough live drainers. The drainers counted are locked FOR SHARE until this
-- transaction commits (see the header).
create function public.rings_needed(p_ids bigint[]) returns bigint[]
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_cfg public.backbone_config;
  v_skip bigint[];
begin
  if p_ids is null or cardinality(p_ids) = 0 then
    return p_ids;
  end if;
  select * into v_cfg from public.backbone_config;
  with live as (
    select x.agent, x.project_id from public.agent_drainers x
     where x.until > now()
       and x.agent in (select d.agent from public.event_deliveries d where d.id = any (p_ids))
       for share of x)
  select array_agg(d.id) into v_skip
    from public.event_deliveries d
    join public.agents a on a.name = d.agent
   where d.id = any (p_ids)
     and (select count(*) from live l
           where l.agent = d.agent and (not a.serialize_by_project or l.project_id = d.project_id))
         >= case when a.serialize_by_project then 1 else v_cfg.max_drainers end;
  if v_skip is null then
    return p_ids;
  end if;
  update public.event_deliveries
     set ring_after = now() + make_interval(secs => v_cfg.coalesced_ring_after_ms / 1000.0)
   where id = any (v_skip);
  return array(select unnest(p_ids) except select unnest(v_skip));
end
$$;

-- Fan-out, as in 2026120100060001_wildcards_clock.sql; only the ring changed:
-- it goes through rings_needed().
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
      (event_id, agent, event_type, project_id, status, max_attempts, event_created_at, last_error, finished_at)
    select new.id, a.name, new.type, (new.metadata ->> 'project_id')::uuid,
           case when v_block is null then 'pending' else 'blocked' end,
           a.max_attempts, new.created_at, v_block,
           case when v_block is null then null else now() end
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

-- The drain's next claim, as in 20261201000110_drain.sql; its first claim
-- registers the drainer, for p_hold_ms at most (its budget and a margin).
create function public.claim_next(p_agent text, p_worker text, p_project_id uuid, p_drainer uuid,
                                  p_hold_ms integer)
returns setof public.delivery_claim
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  c public.delivery_claim;
begin
  select * into c from public.claim_next(p_agent, p_worker, p_project_id);
  if c.delivery_id is null then
    return;
  end if;
  if p_drainer is not null and c.outcome = 'claimed' then
    insert into public.agent_drainers (drainer, agent, project_id, until)
    values (p_drainer, p_agent, p_project_id,
            clock_timestamp() + make_interval(secs => greatest(p_hold_ms, 0) / 1000.0))
    on conflict (drainer) do nothing;
  end if;
  return next c;
end
$$;

-- A drainer that stops: new deliveries are rung again once this commits (the
-- DELETE waits for fan-outs that skipped a ring because of it); a drain that
-- ran out of budget also rings the agent's next due delivery.
create function public.end_drain(p_drainer uuid, p_agent text, p_project_id uuid, p_ring_next boolean)
returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  delete from public.agent_drainers where drainer = p_drainer or until < now() - interval '1 minute';
  if p_ring_next then
    return public.ring_next(p_agent, p_project_id);
  end if;
  return 0;
end
$$;

select public.lock_down_project_objects(array['agent_drainers', 'rings_needed', 'end_drain', 'claim_next']);
-- The backbone's bookkeeping: written by the functions above (security
-- definer), read by the service role's tools.
revoke all on public.agent_drainers from anon, authenticated;
revoke insert, update, delete on public.agent_drainers from service_role;
-- rings_needed is a step of fan_out_event (which runs as the owner), not an API.
revoke execute on function public.rings_needed(bigint[]) from service_role;
