-- Wildcard subscriptions and time as events.
--
-- agents.event_types may hold '*' (every event) and prefixes like 'spec.*'.
-- One matching function, public.subscribes, decides for fan-out and replay.
-- Loop protection: a wildcard never brings an agent the events it produced
-- itself (notify on '*' does not react to its own notification.sent); an exact
-- subscription still does (competitive reacts to competitor.mentioned).
--
-- The clock: public.clock_periodic(), called by run_periodic() on the sweep's
-- schedule, publishes one clock.tick per project per cadence boundary
-- (backbone_config.clock_interval_seconds, default hourly, 0 = off) with a
-- deterministic id per (tick time, project), inserted "on conflict do nothing":
-- two schedulers never publish one tick twice.

create function public.valid_subscriptions(p_patterns text[]) returns boolean
language sql immutable set search_path = public, pg_temp as $$
  select coalesce(bool_and(p ~ '^(\*|[a-z][a-z_]*(\.[a-z][a-z_]*)*\.\*|[a-z][a-z_]*(\.[a-z][a-z_]*)+)$'), true)
    from unnest(p_patterns) p
$$;

alter table public.agents
  add constraint agents_event_types_valid check (public.valid_subscriptions(event_types));

-- Does an agent with these subscriptions receive an event of p_type published
-- by p_producer? Exact names always match; '*' and 'prefix.*' match anything
-- (under the prefix) except what the agent itself produced.
create function public.subscribes(p_patterns text[], p_type text, p_agent text default null,
                                  p_producer text default null)
returns boolean
language sql immutable set search_path = public, pg_temp as $$
  select p_type = any (p_patterns)
      or (p_producer is distinct from p_agent or p_agent is null)
         and exists (select 1 from unnest(p_patterns) p
                      where p = '*' or (right(p, 2) = '.*' and starts_with(p_type, left(p, -1))))
$$;

-- Fan-out, as in 20261128000200_events.sql; only the matching changed.
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
  perform public.ring_doorbell(v_ids);
  return null;
end
$$;

-- Replay, as in 20261128000210_ledger.sql; only the matching changed.
create or replace function public.replay_deliveries(
  p_event_id uuid default null, p_agent text default null, p_type text default null,
  p_project_id uuid default null, p_from timestamptz default null, p_to timestamptz default null,
  p_statuses text[] default null)
returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ids bigint[];
begin
  if num_nonnulls(p_event_id, p_agent, p_type, p_project_id, p_from, p_to, p_statuses) = 0 then
    raise exception using errcode = '22023', message = 'replay needs at least one filter';
  end if;
  if p_statuses is null then
    insert into public.event_deliveries
      (event_id, agent, event_type, project_id, max_attempts, event_created_at)
    select e.id, a.name, e.type, (e.metadata ->> 'project_id')::uuid, a.max_attempts, e.created_at
      from public.events e
      join public.agents a
        on a.enabled and public.subscribes(a.event_types, e.type, a.name, e.metadata ->> 'producer')
     where (p_event_id is null or e.id = p_event_id) and (p_agent is null or a.name = p_agent)
       and (p_type is null or e.type = p_type)
       and (p_project_id is null or e.metadata ->> 'project_id' = p_project_id::text)
       and (p_from is null or e.created_at >= p_from) and (p_to is null or e.created_at < p_to)
    on conflict (event_id, agent) do nothing;
  end if;
  with replayed as (
    update public.event_deliveries d
       set status = 'pending', attempts = 0, next_attempt_at = now(), ring_after = now(),
           lease_until = null, claim_token = null, finished_at = null, last_error = null,
           replay_count = replay_count + 1, updated_at = now()
     where (p_event_id is null or d.event_id = p_event_id) and (p_agent is null or d.agent = p_agent)
       and (p_type is null or d.event_type = p_type)
       and (p_project_id is null or d.project_id = p_project_id)
       and (p_from is null or d.event_created_at >= p_from) and (p_to is null or d.event_created_at < p_to)
       and (p_statuses is null or d.status = any (p_statuses))
       -- loop protection's stops are replayed only when asked for by status
       and (d.status <> 'blocked' or 'blocked' = any (coalesce(p_statuses, '{}')))
       and not (d.status = 'running' and d.lease_until > now())
    returning d.id)
  select array_agg(id order by id) into v_ids from replayed;
  -- Ring the first batch now; the sweep rings the rest in batches.
  perform public.ring_doorbell(v_ids[1:200]);
  return coalesce(cardinality(v_ids), 0);
end
$$;

-- --- the clock -------------------------------------------------------------

alter table public.backbone_config
  add column clock_interval_seconds integer not null default 3600
    check (clock_interval_seconds = 0 or clock_interval_seconds >= 60);

-- One row per published periodic tick: the cheap "already done" check that
-- keeps a 5-second schedule from re-inserting an hour's ticks every time.
create table public.clock_ticks (
  tick_at timestamptz primary key,
  projects integer not null default 0,
  published_at timestamptz not null default now()
);
alter table public.clock_ticks enable row level security;

-- The tick's time as it appears in the payload and in the id (UTC, seconds).
create function public.clock_iso(p_at timestamptz) returns text
language sql immutable set search_path = public, pg_temp as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- A name-based UUID (version 3, MD5) of "clock.tick/<iso time>/<project>" in
-- SignalsLoop's namespace (shared/publish.py NAMESPACE): Python's
-- uuid.uuid3(NAMESPACE, name) gives the same id.
create function public.clock_tick_id(p_at timestamptz, p_project_id uuid) returns uuid
language sql immutable set search_path = public, pg_temp as $$
  with h as (
    select md5(decode('6f1c2b8e5a0d4d1e9a573c8f0e2b9d41', 'hex')
               || convert_to('clock.tick/' || public.clock_iso(p_at) || '/' || p_project_id::text, 'UTF8')) as x)
  select (substr(x, 1, 12) || '3' || substr(x, 14, 3)
          || to_hex((('x' || substr(x, 17, 1))::bit(4)::integer & 3) | 8) || substr(x, 18))::uuid
    from h
$$;

-- Publish the tick for p_at (truncated to the second) to one project or all
-- (those created before p_created_before, when given). Returns how many tick
-- events were new.
create function public.publish_clock_tick(p_at timestamptz, p_project_id uuid default null,
                                          p_created_before timestamptz default null) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_at timestamptz := date_trunc('second', p_at);
  v_interval integer;
  v_n integer;
begin
  if p_at is null then
    raise exception using errcode = '22023', message = 'a clock tick needs a time';
  end if;
  if p_project_id is not null and not exists (select 1 from public.projects where id = p_project_id) then
    raise exception using errcode = 'P0002', message = format('unknown project %s', p_project_id);
  end if;
  select clock_interval_seconds into v_interval from public.backbone_config;
  insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata)
  select t.id, 'clock.tick', 'clock', p.id,
         jsonb_build_object('at', public.clock_iso(v_at), 'interval_seconds', v_interval,
                            'project_id', p.id),
         jsonb_build_object('project_id', p.id, 'timestamp', now(), 'correlation_id', t.id,
                            'causation_id', null, 'depth', 0, 'producer', 'clock')
    from public.projects p
    cross join lateral (select public.clock_tick_id(v_at, p.id) as id) t
   where (p_project_id is null or p.id = p_project_id)
     and (p_created_before is null or p.created_at < p_created_before)
   order by p.id
  on conflict (id) do nothing;
  get diagnostics v_n = row_count;
  return v_n;
end
$$;

-- The periodic part: at most one tick per cadence boundary, whoever calls,
-- to the projects that existed for the whole interval before it (a project
-- created minutes ago has had no time pass yet; its first tick is the next).
create function public.clock_periodic() returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_interval integer;
  v_at timestamptz;
  v_n integer;
begin
  select clock_interval_seconds into v_interval from public.backbone_config;
  if coalesce(v_interval, 0) = 0 then
    return 0;
  end if;
  v_at := date_bin(make_interval(secs => v_interval), now(), timestamptz '2000-01-01 00:00:00+00');
  insert into public.clock_ticks (tick_at) values (v_at) on conflict (tick_at) do nothing;
  if not found then
    return 0;
  end if;
  v_n := public.publish_clock_tick(v_at, null, v_at - make_interval(secs => v_interval));
  update public.clock_ticks set projects = v_n where tick_at = v_at;
  return v_n;
end
$$;

create or replace function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object('rung', public.sweep_deliveries(p_limit), 'clock_ticks', public.clock_periodic());
end
$$;

revoke execute on function public.valid_subscriptions(text[]), public.subscribes(text[], text, text, text),
  public.clock_iso(timestamptz), public.clock_tick_id(timestamptz, uuid),
  public.publish_clock_tick(timestamptz, uuid, timestamptz), public.clock_periodic(), public.run_periodic(integer)
  from public, anon, authenticated;
grant execute on function public.valid_subscriptions(text[]), public.subscribes(text[], text, text, text),
  public.clock_iso(timestamptz), public.clock_tick_id(timestamptz, uuid),
  public.publish_clock_tick(timestamptz, uuid, timestamptz), public.clock_periodic(), public.run_periodic(integer)
  to service_role;

-- notify hears everything (a new event type reaches it without a migration).
update public.agents set event_types = array['*'], updated_at = now(),
       description = 'Scores the importance of every event; sends high and urgent to Slack at once, '
                     'digests the rest on clock.tick'
 where name = 'notify';
