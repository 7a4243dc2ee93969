-- The plan's migration strategy: run the event-driven agents beside the
-- existing code in shadow, compare, move traffic over 25/50/75/100 %, and
-- roll back with one command. Modes and the per-delivery path are in
-- 20261201000110_drain.sql (agents.mode, rollout_percent, runs_in_shadow).

-- What a shadow run would have done: its writes, events and messages, never
-- applied. One row per (agent, event): a replay of a shadow run replaces it.
create table public.shadow_results (
  id bigint generated always as identity primary key,
  agent text not null references public.agents (name) on update cascade on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  aggregate_type text not null,
  aggregate_id uuid not null,
  event_id uuid not null references public.events (id) on delete cascade,
  event_type text not null,
  delivery_id bigint references public.event_deliveries (id) on delete set null,
  decision jsonb not null,
  model text,
  created_at timestamptz not null default now(),
  unique (agent, event_id)
);
create index shadow_results_compare_idx on public.shadow_results (agent, project_id, created_at desc);
alter table public.shadow_results enable row level security;
create policy shadow_results_read on public.shadow_results for select to authenticated
  using (public.is_project_member(project_id));
revoke all on public.shadow_results from anon, authenticated;
grant select on public.shadow_results to authenticated;

-- Every change of an agent's mode or percentage: who, when, from, to, why.
create table public.rollout_changes (
  id bigint generated always as identity primary key,
  agent text not null references public.agents (name) on update cascade on delete cascade,
  changed_by text not null,
  changed_at timestamptz not null default now(),
  from_mode text not null,
  from_percent integer not null,
  to_mode text not null,
  to_percent integer not null,
  reason text,
  event_id uuid
);
alter table public.rollout_changes enable row level security;
revoke all on public.rollout_changes from anon, authenticated;

-- The end of a shadow run: its decision recorded, the delivery succeeded,
-- nothing written to the live tables, nothing published.
create function public.complete_shadow(p_delivery_id bigint, p_claim_token uuid, p_decision jsonb,
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
  select d.agent, (e.metadata ->> 'project_id')::uuid, e.aggregate_type, e.aggregate_id, e.id, e.type, d.id,
         p_decision, p_model
    from public.events e where e.id = d.event_id
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

-- Change an agent's mode and percentage: recorded, published as
-- agent.rollout_changed, effective for the next claim (runs in flight finish
-- on the path they were claimed with). Waiting deliveries of an agent that
-- was off are rung again.
create function public.set_rollout(p_agent text, p_mode text, p_percent integer default null,
                                   p_by text default null, p_reason text default null)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  a public.agents;
  v_percent integer;
  v_event uuid := gen_random_uuid();
begin
  -- no key update: fan-out inserting deliveries (a key-share lock on the
  -- agents row) never waits on a rollout change, so changes mid-burst cannot
  -- deadlock with completing runs.
  select * into a from public.agents where name = p_agent for no key update;
  if not found then
    raise exception using errcode = 'P0002', message = format('unknown agent %s', p_agent);
  end if;
  if p_mode not in ('off', 'shadow', 'live') then
    raise exception using errcode = '22023', message = format('mode must be off, shadow or live, not %s', p_mode);
  end if;
  v_percent := coalesce(p_percent, case when p_mode = 'live' then 100 else a.rollout_percent end);
  if v_percent not between 0 and 100 then
    raise exception using errcode = '22023', message = format('percent must be 0-100, not %s', v_percent);
  end if;
  update public.agents set mode = p_mode, rollout_percent = v_percent, updated_at = now() where name = p_agent;
  insert into public.rollout_changes (agent, changed_by, from_mode, from_percent, to_mode, to_percent, reason,
                                      event_id)
  values (p_agent, coalesce(p_by, session_user::text), a.mode, a.rollout_percent, p_mode, v_percent, p_reason,
          v_event);
  -- An operator's event: no project, so it carries the nil project id.
  insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata)
  values (v_event, 'agent.rollout_changed', 'agent', md5('agent:' || p_agent)::uuid,
          jsonb_build_object('agent', p_agent, 'from_mode', a.mode, 'from_percent', a.rollout_percent,
                             'to_mode', p_mode, 'to_percent', v_percent, 'reason', p_reason,
                             'changed_by', coalesce(p_by, session_user::text)),
          jsonb_build_object('project_id', '00000000-0000-0000-0000-000000000000', 'producer', 'rollout'));
  if a.mode = 'off' and p_mode <> 'off' then
    update public.event_deliveries set ring_after = now()
     where agent = p_agent and status in ('pending', 'failed', 'parked');
  end if;
  return jsonb_build_object('agent', p_agent, 'from_mode', a.mode, 'from_percent', a.rollout_percent,
                            'to_mode', p_mode, 'to_percent', v_percent, 'event_id', v_event);
end
$$;

-- The feature flag back: every live agent (or one) to shadow, at once.
create function public.rollback_rollout(p_agent text default null, p_by text default null,
                                        p_reason text default 'rollback')
returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_changed jsonb := '[]'::jsonb;
  r record;
begin
  for r in select name from public.agents
            where mode = 'live' and enabled and (p_agent is null or name = p_agent) order by name
  loop
    v_changed := v_changed || public.set_rollout(r.name, 'shadow', null, p_by, p_reason);
  end loop;
  return v_changed;
end
$$;

revoke execute on function public.complete_shadow(bigint, uuid, jsonb, text),
  public.set_rollout(text, text, integer, text, text), public.rollback_rollout(text, text, text)
  from public, anon, authenticated;
grant execute on function public.complete_shadow(bigint, uuid, jsonb, text),
  public.set_rollout(text, text, integer, text, text), public.rollback_rollout(text, text, text)
  to service_role;
