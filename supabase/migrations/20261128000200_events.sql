-- The event backbone: the event log, the agent registry, the delivery ledger
-- (fan-out, claim with lease, complete, fail with backoff, dead letters),
-- loop protection, the circuit breaker, the doorbell, the sweep and replay.
-- Claims and idempotency live here, in SQL, so every adapter (psycopg locally,
-- supabase-py in production) gets exactly the same semantics.

-- pg_net / pg_cron are used where the platform offers them (Supabase).
-- Both need shared_preload_libraries (and pg_cron its cron.database_name): an
-- extension that is installed but not preloaded fails to create ("pg_net is not
-- in shared_preload_libraries"). Then the migrations go on without it and say
-- so: the doorbell is NOTIFY and the local relay rings and sweeps.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_net') then
    begin
      -- The schemas Supabase's documentation uses for them.
      if to_regnamespace('extensions') is not null then
        create extension if not exists pg_net with schema extensions;
      else
        create extension if not exists pg_net;
      end if;
    exception when others then
      raise warning 'pg_net is installed but could not be created (%): the doorbell is NOTIFY, so run the relay '
                    '(signalsloop relay); to use pg_net, add it to shared_preload_libraries, restart and migrate '
                    'again', sqlerrm;
    end;
  end if;
  if exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    begin
      create extension if not exists pg_cron with schema pg_catalog;
    exception when others then
      raise warning 'pg_cron is installed but could not be created (%): nothing schedules the sweep in the '
                    'database, so run the relay (signalsloop relay), whose timer sweeps; to use pg_cron, add it to '
                    'shared_preload_libraries, set cron.database_name to this database, restart and migrate again',
                    sqlerrm;
    end;
  end if;
end
$$;

create table public.backbone_config (
  id boolean primary key default true check (id),
  max_depth integer not null default 8 check (max_depth >= 1),
  max_events_per_chain integer not null default 500 check (max_events_per_chain >= 1),
  circuit_failure_threshold integer not null default 5 check (circuit_failure_threshold >= 1),
  circuit_cooldown_seconds double precision not null default 30 check (circuit_cooldown_seconds >= 0),
  backoff_base_ms integer not null default 1000 check (backoff_base_ms >= 0),
  backoff_max_ms integer not null default 300000 check (backoff_max_ms >= 0),
  lease_grace_ms integer not null default 2000 check (lease_grace_ms >= 0),
  -- How long a rung but unanswered delivery waits before the sweep rings again.
  redelivery_after_seconds double precision not null default 30 check (redelivery_after_seconds > 0),
  -- auto: pg_net where installed, else NOTIFY for the local relay.
  doorbell text not null default 'auto' check (doorbell in ('auto', 'pg_net', 'notify', 'both', 'none')),
  updated_at timestamptz not null default now()
);
insert into public.backbone_config default values;

create table public.agents (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  event_types text[] not null,
  endpoint_url text,
  enabled boolean not null default true,
  -- active: deliveries are rung; paused: they are recorded and wait.
  mode text not null default 'active' check (mode in ('active', 'paused')),
  max_attempts integer not null default 5 check (max_attempts between 1 and 100),
  timeout_ms integer not null default 10000 check (timeout_ms between 100 and 600000),
  max_concurrency integer not null default 8 check (max_concurrency >= 1),
  -- One delivery at a time per project (like procrastinate's queueing locks),
  -- for agents whose decision depends on what earlier deliveries wrote.
  serialize_by_project boolean not null default false,
  circuit_state text not null default 'closed' check (circuit_state in ('closed', 'open', 'half_open')),
  consecutive_failures integer not null default 0,
  circuit_opened_at timestamptz,
  circuit_trial_at timestamptz,
  description text,
  updated_at timestamptz not null default now()
);

-- The seed's DomainEvent, kept exactly.
create table public.events (
  id uuid primary key default gen_random_uuid(),
  type text not null,
  aggregate_type text not null,
  aggregate_id uuid not null,
  payload jsonb not null default '{}'::jsonb,
  metadata jsonb not null default '{}'::jsonb,
  version integer not null default 1,
  created_at timestamptz not null default now(),
  constraint events_type_format check (type ~ '^[a-z][a-z_]*(\.[a-z][a-z_]*)+$'),
  constraint events_metadata_project check (metadata ? 'project_id')
);
create index idx_events_type on public.events (type);
create index idx_events_aggregate on public.events (aggregate_type, aggregate_id);
create index idx_events_created_at on public.events (created_at desc);
create index idx_events_correlation on public.events ((metadata ->> 'correlation_id'));
create index idx_events_project on public.events ((metadata ->> 'project_id'), created_at desc);

create table public.event_deliveries (
  id bigint generated always as identity primary key,
  event_id uuid not null references public.events (id) on delete cascade,
  agent text not null references public.agents (name) on update cascade on delete cascade,
  event_type text not null,
  project_id uuid,
  status text not null default 'pending'
    check (status in ('pending', 'running', 'succeeded', 'failed', 'dead', 'parked', 'blocked')),
  attempts integer not null default 0,
  max_attempts integer not null,
  next_attempt_at timestamptz not null default now(),
  -- When the sweep should ring the doorbell again if nothing has finished it.
  ring_after timestamptz not null default now(),
  lease_until timestamptz,
  claim_token uuid,
  claimed_by text,
  last_error text,
  event_created_at timestamptz not null,
  first_started_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  rung_at timestamptz,
  ring_count integer not null default 0,
  replay_count integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (event_id, agent)
);
create index event_deliveries_due_idx on public.event_deliveries (ring_after)
  where status in ('pending', 'running', 'failed', 'parked');
create index event_deliveries_agent_status_idx on public.event_deliveries (agent, status);
create index event_deliveries_running_project_idx on public.event_deliveries (agent, project_id)
  where status = 'running';

create table public.delivery_attempts (
  id bigint generated always as identity primary key,
  delivery_id bigint not null references public.event_deliveries (id) on delete cascade,
  attempt integer not null,
  claim_token uuid not null unique,
  worker text,
  started_at timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  outcome text not null default 'running'
    check (outcome in ('running', 'succeeded', 'failed', 'dead', 'expired')),
  error text
);
create index delivery_attempts_delivery_idx on public.delivery_attempts (delivery_id);

-- Fill the chain metadata of events inserted without it (roots, hand-made).
create function public.events_fill_metadata() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  if coalesce(new.metadata ->> 'project_id', '') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    raise exception using errcode = '23514',
      message = 'events.metadata.project_id is required and must be a uuid';
  end if;
  new.metadata := jsonb_build_object(
    'timestamp', to_jsonb(new.created_at),
    'correlation_id', new.id,
    'depth', 0,
    'producer', 'unknown'
  ) || new.metadata;
  return new;
end
$$;
create trigger events_fill_metadata before insert on public.events
  for each row execute function public.events_fill_metadata();

-- The webhook secret, from Supabase Vault where it exists.
create function public.agent_secret() returns text
language plpgsql stable security definer set search_path = public, pg_temp as $$
declare
  v_secret text;
begin
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1'
      into v_secret using 'signalsloop_secret';
  end if;
  return v_secret;
end
$$;

-- The doorbell: pg_net POSTs the Supabase database-webhook body, or NOTIFY
-- tells the local relay to. Either may be lost; the sweep rings again.
create function public.ring_doorbell(p_ids bigint[]) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_cfg public.backbone_config;
  v_mode text;
  -- pg_net's function, whoever installed it (Supabase ships it as an extension).
  v_net boolean := to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is not null;
  v_secret text;
  v_rung bigint[] := '{}';
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
    where d.id = any (p_ids) and a.mode = 'active'
  loop
    if v_mode in ('notify', 'both') then
      perform pg_notify('signalsloop_doorbell', json_build_object(
        'delivery_id', r.id, 'event_id', r.event_id, 'agent', r.agent)::text);
      v_rung := v_rung || r.id;
    end if;
    if v_mode in ('pg_net', 'both') and v_net and r.endpoint_url is not null then
      perform net.http_post(
        url := r.endpoint_url,
        body := jsonb_build_object('type', 'INSERT', 'table', 'events', 'schema', 'public',
                                   'record', r.record, 'old_record', null),
        headers := jsonb_build_object('Content-Type', 'application/json')
                   || case when v_secret is null then '{}'::jsonb
                           else jsonb_build_object('Authorization', 'Bearer ' || v_secret) end,
        timeout_milliseconds := r.timeout_ms
      );
      v_rung := v_rung || r.id;
    end if;
  end loop;
  v_rung := array(select distinct unnest(v_rung));
  update public.event_deliveries d
     set rung_at = clock_timestamp(), ring_count = ring_count + 1
   where d.id = any (v_rung);
  -- Rung or not (a paused agent, no endpoint), a row waits before the sweep
  -- looks at it again, so it never blocks the head of the sweep's queue.
  update public.event_deliveries d
     set ring_after = greatest(ring_after, now() + make_interval(secs => v_cfg.redelivery_after_seconds))
   where d.id = any (p_ids);
  return cardinality(v_rung);
end
$$;

-- Fan-out: one delivery per subscribed, enabled agent, in the inserting
-- transaction. Loop protection blocks (and records) what exceeds the limits.
create function public.fan_out_event() returns trigger
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
     where a.enabled and new.type = any (a.event_types)
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
create trigger events_fan_out after insert on public.events
  for each row execute function public.fan_out_event();
