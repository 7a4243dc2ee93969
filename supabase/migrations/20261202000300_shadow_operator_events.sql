-- A shadow run of an operator's event finishes with nothing to store.
--
-- agent.rollout_changed (and any event an operator publishes with no
-- project) carries the nil project id, and notify hears every event ('*').
-- In shadow, complete_shadow stored the decision in shadow_results, whose
-- project_id references projects: the insert failed, the delivery was
-- retried and died, once per rollout change, and the dead letters raised an
-- agent alert. Such an event belongs to no project, so there is nothing any
-- project's comparison could use: the delivery succeeds (still marked
-- shadow) and no shadow_results row is written. Everything else is as in
-- 20261201000120_rollout.sql.

create or replace function public.complete_shadow(p_delivery_id bigint, p_claim_token uuid, p_decision jsonb,
                                                  p_model text default null)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  d public.event_deliveries;
begin
  d := public.lock_delivery(p_delivery_id);
  if d.status <> 'running' or d.claim_token is distinct from p_claim_token then
    return jsonb_build_object('completed', false, 'reason', 'stale claim', 'status', d.status);
  end if;
  if not coalesce(d.shadow, false) then
    raise exception using errcode = '22023', message = format('delivery %s is not a shadow run', d.id);
  end if;
  insert into public.shadow_results
    (agent, project_id, aggregate_type, aggregate_id, event_id, event_type, delivery_id, decision, model)
  select d.agent, p.id, e.aggregate_type, e.aggregate_id, e.id, e.type, d.id, p_decision, p_model
    from public.events e
    join public.projects p on p.id = (e.metadata ->> 'project_id')::uuid
   where e.id = d.event_id
  on conflict (agent, event_id) do update
    set decision = excluded.decision, model = excluded.model, delivery_id = excluded.delivery_id,
        created_at = now();
  update public.event_deliveries
     set status = 'succeeded', finished_at = clock_timestamp(), lease_until = null,
         claim_token = null, last_error = null, updated_at = now()
   where id = d.id;
  update public.delivery_attempts set outcome = 'succeeded', finished_at = clock_timestamp()
   where claim_token = p_claim_token;
  perform public.record_agent_success(d.agent);
  return jsonb_build_object('completed', true, 'written', 0, 'published', 0, 'shadow', true);
end
$$;

-- Replaced, not new: the same privileges as before (service role only).
select public.lock_down_project_objects(array['complete_shadow']);
