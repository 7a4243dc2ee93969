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
  add column max_drainers integer not null default 3 check (max_drainers >= 1),
  -- A skipped ring's fallback: the sweep rings the delivery after this long
  -- if no drainer took it.
  add column coalesced_ring_after_ms integer not null default 2000 check (coalesced_ring_after_ms >= 0);

-- A longer drain: pg_net runs nothing between batches (it waits for the
-- whole batch, then about 1 s), so the budget sets the share of time agents
-- work. Measured with the stand-in at 10 posts/s: 2 s gave reaction p95
-- 13.8 s, 5 s (the cap for the default 10 s timeout) 3.5 s with 3 drainers.
alter table public.backbone_config alter column drain_budget_ms set default 5000;
update public.backbone_config set drain_budget_ms = 5000 where drain_budget_ms = 2000;

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

-- The drain's next claim (20261201000110_drain.sql), with the fair share
-- found by a skip scan: one index probe per project with due work, instead
-- of reading every due delivery of the agent on every claim (measured: 90
-- rows per claim at 10 posts/s, 300,000 delivery_is_due() calls per 30 s).
create or replace function public.claim_next(p_agent text, p_worker text default null,
                                             p_project_id uuid default null)
returns setof public.delivery_claim
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  a public.agents;
  d public.event_deliveries;
  t record;
  v_candidate record;
begin
  select * into a from public.agents where name = p_agent;
  if not found or a.mode = 'off' or not a.enabled or a.circuit_state <> 'closed' then
    return;  -- an open circuit lets its one trial through a ring, never a drain
  end if;
  if a.serialize_by_project then
    if p_project_id is null then
      return;
    end if;
    perform pg_advisory_xact_lock(hashtextextended(p_agent || ':' || p_project_id::text, 0));
    if exists (select 1 from public.event_deliveries o
                where o.agent = p_agent and o.project_id = p_project_id and o.status = 'running'
                  and o.lease_until > now()) then
      return;
    end if;
    select x.* into d from public.event_deliveries x
     where x.agent = p_agent and x.project_id = p_project_id
       and x.status in ('pending', 'failed', 'running') and public.delivery_is_due(x)
     order by x.id limit 1
       for update skip locked;
  else
    -- Fair share: each project's oldest due delivery is a candidate; the
    -- project with the fewest runs in flight goes first, then the oldest.
    for v_candidate in
      with recursive projects (project_id) as (
        (select c.project_id from public.event_deliveries c
          where c.agent = p_agent and c.status in ('pending', 'failed', 'running') and c.project_id is not null
          order by c.project_id limit 1)
        union all
        select (select c.project_id from public.event_deliveries c
                 where c.agent = p_agent and c.status in ('pending', 'failed', 'running')
                   and c.project_id > p.project_id
                 order by c.project_id limit 1)
          from projects p where p.project_id is not null)
      select h.id, h.running
        from projects p
        cross join lateral (
          select c.id, (select count(*) from public.event_deliveries r
                         where r.agent = p_agent and r.project_id = p.project_id and r.status = 'running'
                           and r.lease_until > now()) as running
            from public.event_deliveries c
           where c.agent = p_agent and c.project_id = p.project_id
             and c.status in ('pending', 'failed', 'running') and public.delivery_is_due(c)
           order by c.id limit 1) h
       where p.project_id is not null
      union all  -- events without a project: one more candidate
      select n.id, n.running from (
        select c.id, (select count(*) from public.event_deliveries r
                       where r.agent = p_agent and r.project_id is null and r.status = 'running'
                         and r.lease_until > now()) as running
          from public.event_deliveries c
         where c.agent = p_agent and c.project_id is null
           and c.status in ('pending', 'failed', 'running') and public.delivery_is_due(c)
         order by c.id limit 1) n
       order by running, id
    loop
      select x.* into d from public.event_deliveries x
       where x.id = v_candidate.id and public.delivery_is_due(x)
         for update skip locked;
      exit when d.id is not null;
    end loop;
  end if;
  if d.id is null then
    return;
  end if;
  select * into t from public.take_claim(d, p_worker, false);
  if t.outcome = 'claimed' or t.outcome = 'finished' then
    return query select * from public.claim_result(t.outcome, t.delivery_id, t.claim_token, t.attempt,
                                                   t.max_attempts, p_agent);
  end if;
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
-- rings_needed is a step of fan_out_event, and ring_next now one of end_drain
-- (both run as the owner); neither is an API any more.
revoke execute on function public.rings_needed(bigint[]), public.ring_next(text, uuid) from service_role;
