-- The live dashboard: what a signed-in member may read of the ledger (their
-- projects' deliveries and attempts, the registry without endpoints), replay
-- of dead letters for a project's owners and admins (recorded: who, when,
-- what), a NOTIFY that wakes dashboards when events arrive, and the indexes
-- its pages need to stay fast on millions of events.

create policy deliveries_read on public.event_deliveries for select to authenticated
  using (public.is_project_member(project_id));
-- The subquery runs under the deliveries policy above: attempts of deliveries
-- the member may see, and no others.
create policy attempts_read on public.delivery_attempts for select to authenticated
  using (exists (select 1 from public.event_deliveries d where d.id = delivery_id));
-- 2026120100040001 closed the ledger to members; the policies above need this.
grant select on public.event_deliveries, public.delivery_attempts to authenticated;

-- The registry is the same for every tenant; members see names, subscriptions
-- and circuit state, never where the functions live.
create policy agents_read on public.agents for select to authenticated using (true);
revoke select on public.agents from authenticated;
grant select (name, event_types, enabled, mode, rollout_percent, max_attempts, timeout_ms, serialize_by_project, circuit_state,
              consecutive_failures, circuit_opened_at, description) on public.agents to authenticated;

create table public.replay_log (
  id bigint generated always as identity primary key,
  -- null: an operator's replay across projects
  project_id uuid,
  actor_id uuid,
  actor text not null,
  filter jsonb not null,
  replayed integer not null,
  created_at timestamptz not null default now()
);
create index replay_log_project_idx on public.replay_log (project_id, created_at desc);
alter table public.replay_log enable row level security;
create policy replay_log_read on public.replay_log for select to authenticated
  using (public.is_project_member(project_id));
revoke insert, update, delete, truncate, references, trigger on public.replay_log from anon, authenticated;
revoke all on public.replay_log from anon;

-- Replay dead deliveries matching a filter, and record it. A member (role
-- authenticated, as PostgREST or the dashboard sets it) must be an owner or
-- admin of the one project replayed; an operator (service role, or the
-- database owner) may replay across projects and names itself in p_actor.
create function public.replay_dead_letters(
  p_project_id uuid default null, p_event_id uuid default null, p_agent text default null,
  p_type text default null, p_from timestamptz default null, p_to timestamptz default null,
  p_actor text default null)
returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_member boolean := coalesce(current_setting('role', true), 'none') in ('authenticated', 'anon');
  v_uid uuid := auth.uid();
  v_project uuid := p_project_id;
  v_event_project uuid;
  v_n integer;
begin
  if p_event_id is not null then
    select (metadata ->> 'project_id')::uuid into v_event_project from public.events where id = p_event_id;
    if v_event_project is null or (v_project is not null and v_project <> v_event_project) then
      raise exception using errcode = 'P0002', message = format('unknown event %s', p_event_id);
    end if;
    v_project := v_event_project;
  end if;
  if v_member and (v_uid is null or v_project is null or not public.is_project_admin(v_project)) then
    raise exception using errcode = '42501',
      message = 'replay is for owners and admins of the project it replays';
  end if;
  v_n := public.replay_deliveries(p_event_id => p_event_id, p_agent => p_agent, p_type => p_type,
                                  p_project_id => v_project, p_from => p_from, p_to => p_to,
                                  p_statuses => array['dead']);
  insert into public.replay_log (project_id, actor_id, actor, filter, replayed)
  values (v_project, v_uid,
          case when v_member then v_uid::text else coalesce(p_actor, 'operator') || ' as ' || session_user end,
          jsonb_strip_nulls(jsonb_build_object('event_id', p_event_id, 'agent', p_agent, 'type', p_type,
                                               'from', p_from, 'to', p_to, 'status', 'dead')),
          v_n);
  return v_n;
end
$$;
revoke execute on function public.replay_dead_letters(uuid, uuid, text, text, timestamptz, timestamptz, text)
  from public, anon;
grant execute on function public.replay_dead_letters(uuid, uuid, text, text, timestamptz, timestamptz, text)
  to authenticated, service_role;

-- Wake dashboards listening on a direct connection: one NOTIFY per insert
-- statement (a wake-up, not the data: each page re-reads under its own RLS).
create function public.events_notify_dashboard() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  perform pg_notify('signalsloop_events',
                    (select json_build_object('n', count(*), 'last', max(created_at))::text from new_rows));
  return null;
end
$$;
revoke execute on function public.events_notify_dashboard() from public, anon, authenticated;
grant execute on function public.events_notify_dashboard() to service_role;
create trigger events_notify_dashboard after insert on public.events
  referencing new table as new_rows for each statement execute function public.events_notify_dashboard();

-- Keyset pagination (created_at, id), search by aggregate id, windows over the ledger.
create index events_created_id_idx on public.events (created_at desc, id desc);
create index events_aggregate_id_idx on public.events (aggregate_id);
create index events_type_created_idx on public.events (type, created_at desc);
create index event_deliveries_agent_project_idx on public.event_deliveries (agent, project_id, created_at desc);
create index event_deliveries_updated_idx on public.event_deliveries (updated_at);
create index event_deliveries_dead_idx on public.event_deliveries (agent, finished_at desc) where status = 'dead';
create index delivery_attempts_started_idx on public.delivery_attempts (started_at desc);
