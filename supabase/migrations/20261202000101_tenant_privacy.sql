-- Tenant privacy and a second pass of least privilege (issue 9):
--   * a project's slug is unique per owner, so creating a project says
--     nothing about other tenants' slugs (it was unique across tenants: a
--     member inserting another tenant's slug got "duplicate key", or no row
--     from `on conflict do nothing`: an existence oracle);
--   * members read the ledger's deliveries and attempts without their claim
--     tokens (the dashboard names its columns);
--   * privileges the review of tests/supabase/privileges_allowlist.py found
--     unneeded are taken back.

-- --- slugs: unique per owner --------------------------------------------------------------------
-- The slug is a label (the dashboard shows it beside a shared name), never a
-- lookup key, so it needs to be unique only among one owner's projects, as a
-- repository name is under its owner. projects_create makes owner_id the
-- member's own id, so a conflict can only be with a project the member owns.
-- Projects without an owner (made by operators, or whose owner was deleted:
-- owner_id is set null) are not constrained.
alter table public.projects drop constraint projects_slug_key;
alter table public.projects add constraint projects_owner_slug_key unique (owner_id, slug);

-- --- the ledger without claim tokens --------------------------------------------------------------
-- A claim token is what complete_delivery and fail_delivery take as proof of
-- a claim: the service role's alone. Members keep every other column (the
-- dashboard's pages, deliveries_read and attempts_read). A column added later
-- is not granted until a migration says so. (Revoking the table's SELECT
-- revokes its column grants too, so it comes first.)
revoke select on public.event_deliveries, public.delivery_attempts from authenticated;
grant select (id, event_id, agent, event_type, project_id, status, attempts, max_attempts, next_attempt_at,
              ring_after, lease_until, claimed_by, last_error, event_created_at, first_started_at, started_at,
              finished_at, rung_at, ring_count, replay_count, created_at, updated_at, shadow, ring_errors,
              last_ring_error, last_request_id)
  on public.event_deliveries to authenticated;
grant select (id, delivery_id, attempt, worker, started_at, finished_at, outcome, error)
  on public.delivery_attempts to authenticated;

-- --- privileges nobody needs ---------------------------------------------------------------------
-- Identity columns take their next value without any privilege on their
-- sequence (PostgreSQL does not check it), and no RPC calls nextval() or
-- currval(): the service role needs nothing on them.
revoke all on sequence public.event_deliveries_id_seq, public.delivery_attempts_id_seq,
  public.shadow_results_id_seq, public.rollout_changes_id_seq, public.replay_log_id_seq,
  public.notification_feedback_id_seq, public.prune_runs_id_seq from service_role;

-- The policy helpers serve RLS policies for members; the service role
-- bypasses RLS, and the security-definer functions that call them run as the owner.
revoke execute on function public.is_project_member(uuid), public.is_project_admin(uuid),
  public.post_project(uuid), public.is_project_owner(uuid) from service_role;

-- Hybrid search's pure helpers run inside match_feedback_hybrid and
-- posts_index_lexemes (security definer, as the owner); the operations
-- backfill and the benchmarks that call them directly use the owner's
-- DATABASE_URL.
revoke execute on function public.feedback_tsvector(text, text), public.lexeme_overlap(tsvector, tsvector),
  public.hybrid_weights() from service_role;

-- Logs and bookkeeping that only the backbone's security-definer functions
-- write (replay_dead_letters, set_rollout, prune_retention,
-- evaluate_agent_alerts, clock_periodic/publish_clock_tick,
-- take_event_allowance/prune_rate_limits): the service role reads them, and
-- cannot rewrite or erase the record of a replay or a rollout.
revoke insert, update, delete on public.replay_log, public.rollout_changes, public.prune_runs,
  public.agent_alert_runs, public.clock_ticks, public.event_rate_limits from service_role;

-- Sequences made by later migrations start closed to the service role too.
create or replace function public.lock_down_project_objects(p_names text[] default null) returns integer
language plpgsql set search_path = public, pg_temp as $$
declare
  r record;
  v_n integer := 0;
  v_maintain boolean := current_setting('server_version_num')::integer >= 170000;
begin
  for r in
    select c.oid, c.relkind, format('%I.%I', 'public', c.relname) as ident,
           -- a relation's row type is written once, when it is created
           p_names is null and t.oid is not null and public.changed_in_this_transaction(t.xmin) as is_new
      from pg_class c left join pg_type t on t.oid = c.reltype
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
       and not exists (select 1 from pg_depend e where e.classid = 'pg_class'::regclass and e.objid = c.oid
                                                  and e.deptype = 'e')
       and case when p_names is null then public.changed_in_this_transaction(c.xmin)
                else c.relname = any (p_names)
                  or exists (select 1 from pg_depend o join pg_class t on t.oid = o.refobjid
                              where o.classid = 'pg_class'::regclass and o.objid = c.oid
                                and o.deptype in ('a', 'i') and t.relname = any (p_names)
                                and t.relnamespace = 'public'::regnamespace) end
  loop
    if r.relkind = 'S' then
      -- identity columns need no privilege on their sequence; a serial column
      -- (nextval() as its default) needs USAGE granted by its migration
      execute format('revoke all on sequence %s from anon, authenticated, service_role', r.ident);
    else
      execute format('revoke all on table %s from anon', r.ident);
      if r.is_new then
        execute format('revoke all on table %s from authenticated', r.ident);
      end if;
      execute format('revoke truncate, trigger, references on table %s from authenticated, service_role', r.ident);
      if v_maintain then
        execute format('revoke maintain on table %s from authenticated, service_role', r.ident);
      end if;
    end if;
    v_n := v_n + 1;
  end loop;
  for r in
    select p.oid::regprocedure as sig, p.prorettype in ('trigger'::regtype, 'event_trigger'::regtype) as is_trigger
      from pg_proc p
     where p.pronamespace = 'public'::regnamespace
       and not exists (select 1 from pg_depend e where e.classid = 'pg_proc'::regclass and e.objid = p.oid
                                                  and e.deptype = 'e')
       and case when p_names is null then public.changed_in_this_transaction(p.xmin)
                else p.proname = any (p_names) end
  loop
    execute format('revoke execute on function %s from public, anon, authenticated', r.sig);
    execute format(case when r.is_trigger then 'revoke execute on function %s from service_role'
                        else 'grant execute on function %s to service_role' end, r.sig);
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;
-- create or replace keeps the function's grants (the owner's only); said again for clarity.
revoke execute on function public.lock_down_project_objects(text[]) from public, anon, authenticated, service_role;

-- The lexeme index is read inside match_feedback_hybrid (security definer)
-- and by the owner's backfill and benchmarks; no service-role path reads it.
revoke select on public.feedback_lexemes from service_role;

-- The registry as members see it: what the dashboard shows (names,
-- subscriptions, mode and rollout, circuit state); its tuning (attempts,
-- timeouts, serialization, descriptions) is the operators'.
revoke select (max_attempts, timeout_ms, serialize_by_project, circuit_opened_at, description)
  on public.agents from authenticated;

-- --- replay: no oracle on event ids ---------------------------------------------------------------
-- replay_dead_letters(p_event_id => another tenant's event) answered "replay
-- is for owners and admins" where a made-up id answered "unknown event": a
-- member could tell which event ids exist. Now an event of a project the
-- caller is not a member of is unknown to them, raised by the same statement
-- (same message, same context line). Members of the event's project may read
-- the event anyway, so they are still told they are not an admin.
create or replace function public.replay_dead_letters(
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
    if v_member and not public.is_project_member(v_event_project) then
      v_event_project := null;  -- another tenant's event: unknown to this caller, as a missing one is
    end if;
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

-- create or replace keeps its grants (authenticated and service_role, 20261201000700_dashboard.sql).
