-- Delivery ledger operations: claim (atomic, leased), complete (results,
-- follow-on events and the state change in one transaction), fail (backoff
-- with jitter, dead letter), circuit breaker, sweep and replay.

create function public.backoff_seconds(p_attempt integer) returns double precision
language sql volatile set search_path = public, pg_temp as $$
  -- Exponential, capped, with up to 25% added jitter ("equal jitter" keeps it growing).
  select least(c.backoff_max_ms, c.backoff_base_ms * power(2, greatest(p_attempt - 1, 0)))
         / 1000.0 * (1 + random() * 0.25)
    from public.backbone_config c
$$;

-- Let one trial through an open circuit after the cool-down; true when this
-- caller won the trial (the row lock makes it one winner under races).
create function public.take_circuit_trial(p_agent text) returns boolean
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_won boolean;
begin
  update public.agents a
     set circuit_state = 'half_open', circuit_trial_at = now()
    from public.backbone_config c
   where a.name = p_agent
     and ((a.circuit_state = 'open'
           and a.circuit_opened_at + make_interval(secs => c.circuit_cooldown_seconds) <= now())
       or (a.circuit_state = 'half_open'
           and a.circuit_trial_at + make_interval(secs => (a.timeout_ms + c.lease_grace_ms) / 1000.0) < now()))
  returning true into v_won;
  return coalesce(v_won, false);
end
$$;

-- An attempt whose lease ran out with no answer: a crashed or hung function,
-- which counts against the agent's circuit like any retriable failure.
create function public.expire_attempt(d public.event_deliveries) returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.delivery_attempts set outcome = 'expired', finished_at = now()
   where claim_token = d.claim_token;
  perform public.record_agent_failure(d.agent);
end
$$;

-- Park a delivery while the agent's circuit is not closed, until the moment a
-- claim could succeed: the cool-down's end, or the running trial's lease end.
-- The circuit is read after take_circuit_trial so a lost race sees 'half_open'.
create function public.park_delivery(p_delivery_id bigint, p_agent text) returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.event_deliveries d
     set status = 'parked', lease_until = null, claim_token = null, updated_at = now(),
         ring_after = greatest(now(), case
           when a.circuit_state = 'half_open'
             then a.circuit_trial_at + make_interval(secs => (a.timeout_ms + c.lease_grace_ms) / 1000.0)
           else a.circuit_opened_at + make_interval(secs => c.circuit_cooldown_seconds) end)
    from public.agents a, public.backbone_config c
   where d.id = p_delivery_id and a.name = p_agent;
end
$$;

create function public.claim_delivery(p_event_id uuid, p_agent text, p_worker text default null)
returns table (outcome text, delivery_id bigint, claim_token uuid, attempt integer, max_attempts integer)
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
  a public.agents;
  c public.backbone_config;
  v_token uuid := gen_random_uuid();
  v_lease timestamptz;
begin
  select * into d from public.event_deliveries x
   where x.event_id = p_event_id and x.agent = p_agent for update;
  if not found then
    return query select 'unknown'::text, null::bigint, null::uuid, null::integer, null::integer;
    return;
  end if;
  if d.status in ('succeeded', 'dead', 'blocked') then
    return query select 'finished'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
  if d.status = 'running' and d.lease_until > now() then
    return query select 'duplicate'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
  if d.status = 'failed' and d.next_attempt_at > now() then
    return query select 'not_due'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
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
  select * into a from public.agents where name = p_agent;
  select * into c from public.backbone_config;
  if a.mode = 'paused' or not a.enabled then
    -- A ring already in flight when the agent was paused: the delivery waits.
    return query select 'paused'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
  if a.serialize_by_project and d.project_id is not null then
    perform pg_advisory_xact_lock(hashtextextended(p_agent || ':' || d.project_id::text, 0));
    if exists (select 1 from public.event_deliveries o
                where o.agent = p_agent and o.project_id = d.project_id and o.status = 'running'
                  and o.lease_until > now() and o.id <> d.id) then
      return query select 'busy'::text, d.id, null::uuid, d.attempts, d.max_attempts;
      return;
    end if;
  end if;
  if d.status = 'running' then
    -- The previous attempt's lease ran out: it is over, whatever happens next.
    perform public.expire_attempt(d);
  end if;
  if a.circuit_state <> 'closed' and not public.take_circuit_trial(p_agent) then
    perform public.park_delivery(d.id, p_agent);
    return query select 'parked'::text, d.id, null::uuid, d.attempts, d.max_attempts;
    return;
  end if;
  v_lease := now() + make_interval(secs => (a.timeout_ms + c.lease_grace_ms) / 1000.0);
  update public.event_deliveries
     set status = 'running', attempts = attempts + 1, claim_token = v_token, claimed_by = p_worker,
         lease_until = v_lease, ring_after = v_lease, started_at = clock_timestamp(),
         first_started_at = coalesce(first_started_at, clock_timestamp()), updated_at = now()
   where id = d.id;
  insert into public.delivery_attempts (delivery_id, attempt, claim_token, worker)
  values (d.id, d.attempts + 1, v_token, p_worker);
  return query select 'claimed'::text, d.id, v_token, d.attempts + 1, d.max_attempts;
end
$$;

-- Tables agents may write through apply_writes, and nothing else.
create function public.agent_writable_tables() returns text[]
language sql immutable as $$
  select array['sentiment_analysis', 'feedback_embeddings', 'themes', 'theme_feedback',
               'duplicates', 'priority_scores', 'notifications', 'specs']
$$;

-- Upserts on natural keys. p_writes: [{"table", "rows": [...], "on_conflict": [cols], "update": bool}]
create function public.apply_writes(p_writes jsonb) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  w jsonb;
  v_table text;
  v_cols text[];
  v_conflict text[];
  v_set text;
  v_sql text;
  v_n integer;
  v_total integer := 0;
begin
  for w in select value from jsonb_array_elements(coalesce(p_writes, '[]'::jsonb)) loop
    v_table := w ->> 'table';
    if v_table is null or not (v_table = any (public.agent_writable_tables())) then
      raise exception using errcode = '22023', message = format('table %L is not writable by agents', v_table);
    end if;
    if coalesce(jsonb_array_length(w -> 'rows'), 0) = 0 then
      continue;
    end if;
    select array_agg(k order by k) into v_cols from jsonb_object_keys(w -> 'rows' -> 0) k;
    select array_agg(x) into v_conflict from jsonb_array_elements_text(coalesce(w -> 'on_conflict', '[]'::jsonb)) x;
    v_sql := format('insert into public.%1$I (%2$s) select %2$s from jsonb_populate_recordset(null::public.%1$I, $1)',
                    v_table, (select string_agg(format('%I', col), ', ') from unnest(v_cols) col));
    if v_conflict is not null then
      select string_agg(format('%1$I = excluded.%1$I', col), ', ') into v_set
        from unnest(v_cols) col where not (col = any (v_conflict));
      v_sql := v_sql || format(' on conflict (%s) ', (select string_agg(format('%I', col), ', ') from unnest(v_conflict) col))
               || case when coalesce((w ->> 'update')::boolean, true) and v_set is not null
                       then 'do update set ' || v_set else 'do nothing' end;
      -- "guard": only a row at least as new replaces the stored one, so a late
      -- retry of an older event cannot overwrite a newer result.
      if w ->> 'guard' is not null and coalesce((w ->> 'update')::boolean, true) and v_set is not null then
        v_sql := v_sql || format(' where %2$I.%1$I is null or excluded.%1$I >= %2$I.%1$I', w ->> 'guard', v_table);
      end if;
    end if;
    execute v_sql using w -> 'rows';
    get diagnostics v_n = row_count;
    v_total := v_total + v_n;
  end loop;
  return v_total;
end
$$;

-- Insert-or-ignore: ids are deterministic, so a retried publisher is a no-op.
create function public.publish_events(p_events jsonb) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_n integer;
begin
  insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata, version)
  select coalesce((e ->> 'id')::uuid, gen_random_uuid()), e ->> 'type', e ->> 'aggregate_type',
         (e ->> 'aggregate_id')::uuid, coalesce(e -> 'payload', '{}'::jsonb),
         coalesce(e -> 'metadata', '{}'::jsonb), coalesce((e ->> 'version')::integer, 1)
    from jsonb_array_elements(coalesce(p_events, '[]'::jsonb)) e
  on conflict (id) do nothing;
  get diagnostics v_n = row_count;
  return v_n;
end
$$;

-- A serialized agent's next delivery in the same project gets its doorbell
-- as soon as the previous one ends, instead of waiting for the sweep.
create function public.ring_next_in_project(p_agent text, p_project_id uuid) returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  if p_project_id is null or not exists (select 1 from public.agents where name = p_agent and serialize_by_project) then
    return;
  end if;
  perform public.ring_doorbell(array(
    select id from public.event_deliveries
     where agent = p_agent and project_id = p_project_id and status = 'pending'
     order by id limit 1));
end
$$;

create function public.record_agent_success(p_agent text) returns void
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_was_failing boolean;
  v_ids bigint[];
begin
  update public.agents
     set consecutive_failures = 0, circuit_state = 'closed', circuit_opened_at = null,
         circuit_trial_at = null, updated_at = now()
   where name = p_agent and (consecutive_failures > 0 or circuit_state <> 'closed')
  returning true into v_was_failing;
  if v_was_failing then
    -- The circuit closed: parked deliveries go back to the queue.
    -- skip locked: a parked row locked right now is being claimed (the claim
    -- holds it, then waits for this agents row); waiting here would deadlock.
    with unparked as (
      update public.event_deliveries set status = 'pending', ring_after = now(), updated_at = now()
       where id in (select id from public.event_deliveries
                     where agent = p_agent and status = 'parked' for update skip locked)
      returning id)
    select array_agg(id order by id) into v_ids from unparked;
    -- Ring the first batch now; the sweep rings the rest, so a recovering
    -- agent is not flooded back into failure.
    perform public.ring_doorbell(v_ids[1:200]);
  end if;
end
$$;

create function public.record_agent_failure(p_agent text) returns void
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.agents a
     set consecutive_failures = a.consecutive_failures + 1,
         circuit_state = case when a.circuit_state = 'half_open'
                                or a.consecutive_failures + 1 >= c.circuit_failure_threshold
                              then 'open' else a.circuit_state end,
         circuit_opened_at = case when a.circuit_state = 'half_open'
                                    or (a.circuit_state = 'closed'
                                        and a.consecutive_failures + 1 >= c.circuit_failure_threshold)
                                  then now() else a.circuit_opened_at end,
         updated_at = now()
    from public.backbone_config c
   where a.name = p_agent;
end
$$;

-- The delivery row, locked for the caller's transaction (unknown ids are an error).
create function public.lock_delivery(p_delivery_id bigint) returns public.event_deliveries
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
begin
  select * into d from public.event_deliveries where id = p_delivery_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('unknown delivery %s', p_delivery_id);
  end if;
  return d;
end
$$;

create function public.complete_delivery(p_delivery_id bigint, p_claim_token uuid,
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
  perform public.ring_next_in_project(d.agent, d.project_id);
  return jsonb_build_object('completed', true, 'written', v_written, 'published', v_published);
end
$$;

create function public.fail_delivery(p_delivery_id bigint, p_claim_token uuid, p_error text,
                                     p_retriable boolean default true,
                                     p_retry_after_seconds double precision default null)
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
  if p_retriable then
    -- A permanent failure is about that one event, not the agent's health.
    perform public.record_agent_failure(d.agent);
  end if;
  perform public.ring_next_in_project(d.agent, d.project_id);
  return jsonb_build_object('recorded', true, 'status', case when v_dead then 'dead' else 'failed' end,
                            'attempts', d.attempts, 'next_attempt_at', v_next);
end
$$;

-- The redelivery sweep (pg_cron in production, the relay's timer locally):
-- rings due retries, expired leases, unanswered doorbells and parked work
-- whose circuit cool-down has passed.
create function public.sweep_deliveries(p_limit integer default 500) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return public.ring_doorbell(array(
    select d.id from public.event_deliveries d
     where d.status in ('pending', 'running', 'failed', 'parked') and d.ring_after <= now()
       and d.agent in (select name from public.agents where mode = 'active')
     order by d.ring_after
     limit p_limit
       for update of d skip locked));
end
$$;

-- Replay by filter. Matching events are fanned out again to agents subscribed
-- now; matching deliveries go back to pending with a fresh attempt budget.
create function public.replay_deliveries(
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
      from public.events e join public.agents a on a.enabled and e.type = any (a.event_types)
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

create function public.replay_event(p_event_id uuid, p_agent text default null) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  if not exists (select 1 from public.events where id = p_event_id) then
    raise exception using errcode = 'P0002', message = format('unknown event %s', p_event_id);
  end if;
  return public.replay_deliveries(p_event_id => p_event_id, p_agent => p_agent);
end
$$;

create function public.replay_dead(p_agent text default null) returns integer
language sql security definer set search_path = public, pg_temp as $$
  select public.replay_deliveries(p_agent => p_agent, p_statuses => array['dead'])
$$;

-- The schedule, where pg_cron exists (Supabase). Locally the relay's timer
-- calls the same function.
do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    -- Second schedules need pg_cron 1.5+; 1.4 (Debian's postgresql-15-cron) rejects them (22023), so
    -- there the job runs every minute; 20261201000300_cron_compat.sql makes it sweep every few seconds.
    begin
      perform cron.schedule('signalsloop-sweep', '5 seconds', 'select public.sweep_deliveries()');
    exception when invalid_parameter_value then
      perform cron.schedule('signalsloop-sweep', '* * * * *', 'select public.sweep_deliveries()');
    end;
  end if;
end
$$;
