-- The doorbell is a wake-up, not the unit of work (issue: production path on
-- Supabase). pg_net sends each request once and pauses about 1 s between
-- batches while busy, so one delivery per ring caps an agent at the ring
-- cadence. Here:
--   * claim_delivery returns the stored event (the ledger, not the body, is
--     the truth) and says why an id is unknown;
--   * claim_next hands a function the next due delivery of its agent (the same
--     project's next one for a per-project agent; otherwise the oldest due one
--     of the project with the fewest running, so one tenant's flood cannot
--     starve the others), atomically, leased, skipping rows others hold;
--   * rejected or unanswered rings are recorded on their delivery and end dead
--     after max_ring_errors, so nothing waits silently;
--   * circuits count only infrastructure failures, so one tenant's bad data
--     cannot open an agent's circuit for every tenant;
--   * an agent's mode is off, shadow or live (with a rollout percentage),
--     decided per delivery at its claim (the gradual cutover).

-- Modes: off (deliveries are recorded and wait; was 'paused'), shadow (runs
-- decide and record what they would do in shadow_results, with no effect),
-- live (was 'active'): the event-driven path for rollout_percent of the
-- aggregates, chosen deterministically; the rest still run in shadow.
alter table public.agents drop constraint agents_mode_check;
update public.agents set mode = case mode when 'active' then 'live' else 'off' end;
alter table public.agents
  alter column mode set default 'live',
  add constraint agents_mode_check check (mode in ('off', 'shadow', 'live')),
  add column rollout_percent integer not null default 100 check (rollout_percent between 0 and 100);

alter table public.backbone_config
  add column max_ring_errors integer not null default 5 check (max_ring_errors >= 1),
  add column drain_budget_ms integer not null default 5000 check (drain_budget_ms >= 0),
  -- How many deliveries per (agent, project) one sweep rings at most: the
  -- drain takes the rest, and one project's backlog cannot fill the sweep.
  add column sweep_per_project integer not null default 20 check (sweep_per_project >= 1);

alter table public.event_deliveries
  -- set at each claim: true when that run was a shadow run (no effects)
  add column shadow boolean,
  add column ring_errors integer not null default 0,
  add column last_ring_error text,
  -- pg_net's request id of the last ring, matched against net._http_response.
  add column last_request_id bigint;

-- The largest event the schema allows; the functions' body limit admits it.
alter table public.events
  add constraint events_payload_size check (octet_length(payload::text) <= 262144),
  add constraint events_metadata_size check (octet_length(metadata::text) <= 8192);

-- Due for a claim now: never claimed, a retry whose backoff is over, or a run
-- whose lease ran out.
create index event_deliveries_due_by_project_idx on public.event_deliveries (agent, project_id, id)
  where status in ('pending', 'failed', 'running');

create function public.delivery_is_due(d public.event_deliveries) returns boolean
language sql stable set search_path = public, pg_temp as $$
  select d.status = 'pending'
      or (d.status = 'failed' and d.next_attempt_at <= now())
      or (d.status = 'running' and d.lease_until <= now())
$$;

-- Which path an aggregate takes for an agent: 0-99, stable for the pair, so
-- raising the percentage only adds aggregates to the live path.
create function public.rollout_bucket(p_agent text, p_aggregate_id uuid) returns integer
language sql immutable set search_path = public, pg_temp as $$
  select (abs(hashtextextended(p_agent || ':' || p_aggregate_id::text, 0)) % 100)::integer
$$;

create function public.runs_in_shadow(a public.agents, p_aggregate_id uuid) returns boolean
language sql immutable set search_path = public, pg_temp as $$
  select a.mode = 'shadow' or public.rollout_bucket(a.name, p_aggregate_id) >= a.rollout_percent
$$;

-- The part of a claim shared by a ring's claim and the drain's: final-attempt
-- expiry, the project lock of a serialized agent, the circuit, the lease.
create function public.take_claim(d public.event_deliveries, p_worker text, p_check_busy boolean)
returns table (outcome text, delivery_id bigint, claim_token uuid, attempt integer, max_attempts integer)
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  a public.agents;
  c public.backbone_config;
  v_token uuid := gen_random_uuid();
  v_lease timestamptz;
begin
  if d.status = 'running' and d.attempts >= d.max_attempts then
    -- The final attempt's lease ran out with no answer: dead-letter it.
    update public.event_deliveries
       set status = 'dead', finished_at = now(), lease_until = null, claim_token = null,
           last_error = 'lease expired on the final attempt', updated_at = now()
     where id = d.id;
    perform public.expire_attempt(d);
    return query select 'finished'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
  select * into a from public.agents where name = d.agent;
  select * into c from public.backbone_config;
  if a.serialize_by_project and d.project_id is not null and p_check_busy then
    perform pg_advisory_xact_lock(hashtextextended(d.agent || ':' || d.project_id::text, 0));
    if exists (select 1 from public.event_deliveries o
                where o.agent = d.agent and o.project_id = d.project_id and o.status = 'running'
                  and o.lease_until > now() and o.id <> d.id) then
      return query select 'busy'::text, d.id, null::uuid, d.attempts, d.max_attempts;
      return;
    end if;
  end if;
  if d.status = 'running' then
    perform public.expire_attempt(d);
  end if;
  if a.circuit_state <> 'closed' and not public.take_circuit_trial(d.agent) then
    perform public.park_delivery(d.id, d.agent);
    return query select 'parked'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
  v_lease := now() + make_interval(secs => (a.timeout_ms + c.lease_grace_ms) / 1000.0);
  update public.event_deliveries
     set status = 'running', attempts = attempts + 1, claim_token = v_token, claimed_by = p_worker,
         shadow = public.runs_in_shadow(a, (select e.aggregate_id from public.events e where e.id = d.event_id)),
         lease_until = v_lease, ring_after = v_lease, started_at = clock_timestamp(),
         first_started_at = coalesce(first_started_at, clock_timestamp()), updated_at = now()
   where id = d.id;
  insert into public.delivery_attempts (delivery_id, attempt, claim_token, worker)
  values (d.id, d.attempts + 1, v_token, p_worker);
  return query select 'claimed'::text, d.id, v_token, d.attempts + 1, d.max_attempts;
end
$$;

-- What a claim hands back: the outcome, the stored event, and what the
-- function needs to drain (the project, whether the agent is per project,
-- the time budget).
create type public.delivery_claim as (
  outcome text, delivery_id bigint, claim_token uuid, attempt integer, max_attempts integer,
  event jsonb, project_id uuid, serialize_by_project boolean, drain_budget_ms integer, shadow boolean);

create function public.claim_result(p_outcome text, p_delivery_id bigint, p_token uuid, p_attempt integer,
                                    p_max integer, p_agent text) returns public.delivery_claim
language sql stable security definer set search_path = public, pg_temp as $$
  select row(p_outcome, p_delivery_id, p_token, p_attempt, p_max,
             case when p_token is not null then to_jsonb(e) end, d.project_id, a.serialize_by_project,
             least(c.drain_budget_ms, a.timeout_ms / 2), coalesce(d.shadow, false))::public.delivery_claim
    from public.agents a cross join public.backbone_config c
    left join public.event_deliveries d on d.id = p_delivery_id
    left join public.events e on e.id = d.event_id
   where a.name = p_agent
$$;

drop function public.claim_delivery(uuid, text, text);
create function public.claim_delivery(p_event_id uuid, p_agent text, p_worker text default null)
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

-- The drain: the next due delivery of p_agent, claimed, or no row. A
-- per-project agent takes only p_project_id's next one, in id order, and only
-- while no other run of that project holds a lease.
create function public.claim_next(p_agent text, p_worker text default null, p_project_id uuid default null)
returns setof public.delivery_claim
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  a public.agents;
  d public.event_deliveries;
  t record;
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
    select x.* into d from public.event_deliveries x
      join (select distinct on (c.project_id) c.id, c.project_id
              from public.event_deliveries c
             where c.agent = p_agent and c.status in ('pending', 'failed', 'running') and public.delivery_is_due(c)
             order by c.project_id, c.id) h on h.id = x.id
     where public.delivery_is_due(x)
     order by (select count(*) from public.event_deliveries r
                where r.agent = p_agent and r.project_id is not distinct from h.project_id
                  and r.status = 'running' and r.lease_until > now()), x.id
     limit 1
       for update of x skip locked;
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

-- A drain that ran out of its time budget hands on: one fresh ring for the
-- agent's next due delivery (the same project's for a per-project agent).
create function public.ring_next(p_agent text, p_project_id uuid default null) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return public.ring_doorbell(array(
    select d.id from public.event_deliveries d
     where d.agent = p_agent and d.status in ('pending', 'failed', 'running') and public.delivery_is_due(d)
       and (p_project_id is null or d.project_id = p_project_id)
     order by d.id limit 1));
end
$$;

-- A ring that never reached a run: answered 401/404/413/400, refused, or
-- timed out while the delivery still waits. Counted on the delivery; after
-- max_ring_errors the delivery is dead-lettered so it shows and can be
-- replayed, and never blocks its project's queue.
create function public.record_ring_error(p_delivery_id bigint, p_error text) returns text
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_max integer := (select max_ring_errors from public.backbone_config);
  v_status text;
begin
  update public.event_deliveries d
     set ring_errors = d.ring_errors + 1, last_ring_error = left(p_error, 1000),
         last_error = left('doorbell: ' || p_error, 4000), last_request_id = null,
         status = case when d.ring_errors + 1 >= v_max then 'dead' else d.status end,
         finished_at = case when d.ring_errors + 1 >= v_max then now() else d.finished_at end,
         updated_at = now()
   where d.id = p_delivery_id and d.status in ('pending', 'failed')
  returning d.status into v_status;
  return v_status;
end
$$;

-- pg_net keeps its answers in net._http_response; match them to the rings
-- whose deliveries are still waiting. Run on the sweep's schedule.
create function public.collect_ring_errors(p_limit integer default 1000) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  r record;
  v_n integer := 0;
begin
  if to_regclass('net._http_response') is null then
    return 0;
  end if;
  for r in execute $q$
    select d.id, x.status_code, x.timed_out, x.error_msg, x.content, d.status
      from public.event_deliveries d
      join net._http_response x on x.id = d.last_request_id
     where d.last_request_id is not null
     limit $1 $q$ using p_limit
  loop
    -- A ring that reached a run answers with its delivery_id (whatever the
    -- run's outcome, which the run recorded itself); anything else that is
    -- not a success never reached one.
    if coalesce(r.timed_out, false) or r.status_code is null
       or (r.status_code >= 300 and position('"delivery_id"' in coalesce(r.content, '')) = 0) then
      perform public.record_ring_error(r.id, case
        when coalesce(r.timed_out, false) then 'timed out'
        when r.status_code is null then coalesce(r.error_msg, 'no response')
        else format('HTTP %s %s', r.status_code, left(coalesce(r.content, ''), 300)) end);
      v_n := v_n + 1;
    else
      update public.event_deliveries set last_request_id = null where id = r.id;
    end if;
  end loop;
  return v_n;
end
$$;

-- The doorbell, as before, now keeping pg_net's request id on the delivery
-- (collect_ring_errors matches it to pg_net's answer). The body is the same
-- jsonb pg_net serializes as compact UTF-8.
create or replace function public.ring_doorbell(p_ids bigint[]) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_cfg public.backbone_config;
  v_mode text;
  v_net boolean := to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is not null;
  v_secret text;
  v_rung bigint[] := '{}';
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
    if v_mode in ('notify', 'both') then
      perform pg_notify('signalsloop_doorbell', json_build_object(
        'delivery_id', r.id, 'event_id', r.event_id, 'agent', r.agent)::text);
      v_rung := v_rung || r.id;
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
      update public.event_deliveries set last_request_id = v_request where id = r.id;
      v_rung := v_rung || r.id;
    end if;
  end loop;
  v_rung := array(select distinct unnest(v_rung));
  update public.event_deliveries d
     set rung_at = clock_timestamp(), ring_count = ring_count + 1
   where d.id = any (v_rung);
  update public.event_deliveries d
     set ring_after = greatest(ring_after, now() + make_interval(secs => v_cfg.redelivery_after_seconds))
   where d.id = any (p_ids);
  return cardinality(v_rung);
end
$$;

-- complete: as before, without ringing the project's next delivery: the
-- function that completes goes on draining it itself (claim_next), and hands
-- on with ring_next only when its time budget is spent.
create or replace function public.complete_delivery(p_delivery_id bigint, p_claim_token uuid,
                                                    p_writes jsonb default '[]'::jsonb,
                                                    p_events jsonb default '[]'::jsonb)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
  v_written integer;
  v_published integer;
begin
  d := public.lock_delivery(p_delivery_id);
  if d.status <> 'running' or d.claim_token is distinct from p_claim_token then
    return jsonb_build_object('completed', false, 'reason', 'stale claim', 'status', d.status);
  end if;
  v_written := public.apply_writes(p_writes);
  v_published := public.publish_events(p_events);
  update public.event_deliveries
     set status = 'succeeded', finished_at = clock_timestamp(), lease_until = null,
         claim_token = null, last_error = null, updated_at = now()
   where id = d.id;
  update public.delivery_attempts set outcome = 'succeeded', finished_at = clock_timestamp()
   where claim_token = p_claim_token;
  perform public.record_agent_success(d.agent);
  return jsonb_build_object('completed', true, 'written', v_written, 'published', v_published);
end
$$;

-- fail: p_infrastructure says whether the failure is about the agent's
-- platform (timeouts, 5xx, unreachable: counts against its circuit) or about
-- this event's data (retried or dead, but never opens the circuit for every
-- tenant). Default: the old behaviour, retriable failures count.
drop function public.fail_delivery(bigint, uuid, text, boolean, double precision);
create function public.fail_delivery(p_delivery_id bigint, p_claim_token uuid, p_error text,
                                     p_retriable boolean default true,
                                     p_retry_after_seconds double precision default null,
                                     p_infrastructure boolean default null)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
  v_dead boolean;
  v_next timestamptz;
begin
  d := public.lock_delivery(p_delivery_id);
  if d.status <> 'running' or d.claim_token is distinct from p_claim_token then
    return jsonb_build_object('recorded', false, 'reason', 'stale claim', 'status', d.status);
  end if;
  v_dead := not p_retriable or d.attempts >= d.max_attempts;
  if not v_dead then
    v_next := clock_timestamp() + make_interval(
      secs => greatest(public.backoff_seconds(d.attempts), coalesce(p_retry_after_seconds, 0)));
  end if;
  update public.event_deliveries
     set status = case when v_dead then 'dead' else 'failed' end,
         last_error = left(p_error, 4000), lease_until = null, claim_token = null,
         next_attempt_at = coalesce(v_next, next_attempt_at),
         ring_after = coalesce(v_next, ring_after),
         finished_at = case when v_dead then clock_timestamp() end, updated_at = now()
   where id = d.id;
  update public.delivery_attempts
     set outcome = case when v_dead then 'dead' else 'failed' end,
         finished_at = clock_timestamp(), error = left(p_error, 4000)
   where claim_token = p_claim_token;
  if coalesce(p_infrastructure, p_retriable) then
    perform public.record_agent_failure(d.agent);
  end if;
  return jsonb_build_object('recorded', true, 'status', case when v_dead then 'dead' else 'failed' end,
                            'attempts', d.attempts, 'next_attempt_at', v_next);
end
$$;

-- The sweep, fair across projects: at most sweep_per_project rings per
-- (agent, project) per run, and one for a per-project agent (its drain
-- takes the rest), oldest first.
create or replace function public.sweep_deliveries(p_limit integer default 500) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ids bigint[];
begin
  select array_agg(s.id order by s.ring_after) into v_ids
    from (select d.id, d.ring_after,
                 row_number() over (partition by d.agent, d.project_id order by d.ring_after, d.id) as rn,
                 case when a.serialize_by_project then 1 else c.sweep_per_project end as cap
            from public.event_deliveries d
            join public.agents a on a.name = d.agent and a.mode <> 'off'
           cross join public.backbone_config c
           where d.status in ('pending', 'running', 'failed', 'parked') and d.ring_after <= now()) s
   where s.rn <= s.cap;
  return public.ring_doorbell(array(
    select d.id from public.event_deliveries d
     where d.id = any (v_ids[1:p_limit])
     order by d.ring_after
       for update of d skip locked));
end
$$;

create or replace function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object('ring_errors', public.collect_ring_errors(),
                            'rung', public.sweep_deliveries(p_limit));
end
$$;

drop function if exists public.ring_next_in_project(text, uuid);

revoke execute on function public.delivery_is_due(public.event_deliveries),
  public.rollout_bucket(text, uuid), public.runs_in_shadow(public.agents, uuid),
  public.take_claim(public.event_deliveries, text, boolean),
  public.claim_result(text, bigint, uuid, integer, integer, text),
  public.claim_delivery(uuid, text, text), public.claim_next(text, text, uuid), public.ring_next(text, uuid),
  public.record_ring_error(bigint, text), public.collect_ring_errors(integer),
  public.fail_delivery(bigint, uuid, text, boolean, double precision, boolean)
  from public, anon, authenticated;
grant execute on function public.delivery_is_due(public.event_deliveries),
  public.rollout_bucket(text, uuid), public.runs_in_shadow(public.agents, uuid),
  public.take_claim(public.event_deliveries, text, boolean),
  public.claim_result(text, bigint, uuid, integer, integer, text),
  public.claim_delivery(uuid, text, text), public.claim_next(text, text, uuid), public.ring_next(text, uuid),
  public.record_ring_error(bigint, text), public.collect_ring_errors(integer),
  public.fail_delivery(bigint, uuid, text, boolean, double precision, boolean)
  to service_role;
