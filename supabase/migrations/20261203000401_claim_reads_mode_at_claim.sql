-- A claim decides live or shadow with the agent's mode as the claim is written.
--
-- take_claim (20261201000110) read the agent's row once, at the start, and
-- decided shadow from that copy in the UPDATE that claims the delivery.
-- Between the two it may wait: on the project's advisory lock (agents
-- serialized per project), expiring a stale attempt, taking a circuit trial.
-- A rollback (set_rollout to shadow) that committed meanwhile was not seen,
-- so a run claimed after the switch could still run live, its started_at
-- after the switch (seen once in CI: test_rollback_during_a_burst_loses_and_doubles_nothing,
-- under load). Now the UPDATE reads the mode itself: its statement's
-- snapshot is taken as it starts, and started_at (clock_timestamp() in the
-- same statement) comes after it, so a live run's started_at is at most
-- microseconds after the last moment it could have seen the old mode. The
-- rest (timeout, circuit state, serialization) still comes from the first
-- read: they bound this claim, the mode decides what it may do.

create or replace function public.take_claim(d public.event_deliveries, p_worker text, p_check_busy boolean)
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
         shadow = (select public.runs_in_shadow(g, e.aggregate_id) from public.agents g, public.events e
                    where g.name = d.agent and e.id = d.event_id),
         lease_until = v_lease, ring_after = v_lease, started_at = clock_timestamp(),
         first_started_at = coalesce(first_started_at, clock_timestamp()), updated_at = now()
   where id = d.id;
  insert into public.delivery_attempts (delivery_id, attempt, claim_token, worker)
  values (d.id, d.attempts + 1, v_token, p_worker);
  return query select 'claimed'::text, d.id, v_token, d.attempts + 1, d.max_attempts;
end
$$;

select public.lock_down_project_objects();
-- An inner step of the claim functions (security definer): no API role calls it.
revoke execute on function public.take_claim(public.event_deliveries, text, boolean) from service_role;
select public.disable_jit();
