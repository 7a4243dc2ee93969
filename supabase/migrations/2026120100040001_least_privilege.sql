-- Least privilege, scoped to the project's own objects.
--
-- Supabase (and signalsloop/sql/bootstrap.sql on plain PostgreSQL) grants
-- anon, authenticated and service_role ALL on every new table, sequence and
-- function in public and lets RLS decide. RLS does not cover TRUNCATE,
-- TRIGGER or REFERENCES, nor nextval() or EXECUTE, so the project narrows
-- its own objects here and every later migration calls
-- public.lock_down_project_objects() after creating its objects.
--
-- 20261128000400 changed default privileges for the whole database instead
-- (`alter default privileges revoke execute on functions from public`, no
-- schema): every function the migrating role created afterwards, anywhere,
-- lost EXECUTE for PUBLIC, so an extension enabled later (pg_trgm's
-- extensions.similarity) or a team's own function in public was closed to
-- the API roles. That is undone: objects the project did not create keep
-- Supabase's defaults.

alter default privileges grant execute on functions to public;
alter default privileges in schema public grant execute on functions to anon, authenticated, service_role;

-- API roles never create objects in public (PostgreSQL 15+ gives PUBLIC no
-- CREATE there; some Supabase images grant it to the API roles).
revoke create on schema public from anon, authenticated;

-- True for a catalog row's xmin written by the calling transaction (or one
-- of its subtransactions): the objects a migration created or replaced.
-- age() counts from this transaction's id, so only ids at or after it can be
-- ours; of those, committed ones belong to other sessions.
create function public.changed_in_this_transaction(p_xmin xid) returns boolean
language sql volatile set search_path = pg_catalog, pg_temp as $$
  select age(p_xmin) <= 0
     and pg_xact_status((pg_current_xact_id()::text::numeric - age(p_xmin))::text::xid8) = 'in progress'
$$;

-- Narrow the project's objects to what the API roles may ever need:
--   tables and views: nothing for anon; no TRUNCATE, TRIGGER, REFERENCES
--     (nor MAINTAIN, PostgreSQL 17+) for authenticated and service_role;
--     a table the calling transaction created starts with nothing for
--     authenticated either: the migration grants what its RLS policies need
--     after this call (a table only altered keeps what it had);
--   sequences: nothing for anon and authenticated; USAGE and SELECT
--     (nextval, currval) for service_role, no setval;
--   functions: no EXECUTE for PUBLIC, anon and authenticated (policy helpers
--     are granted to authenticated after this call); EXECUTE for service_role
--     except on trigger functions, which nobody calls directly.
-- p_names null: every object in public the calling transaction created or
-- replaced (call it at the end of a migration, before granting what the API
-- roles need); else the objects in public with these names (and the
-- sequences their columns own). Extension members are never touched.
-- Returns how many objects it narrowed.
create function public.lock_down_project_objects(p_names text[] default null) returns integer
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
      execute format('revoke all on sequence %s from anon, authenticated', r.ident);
      execute format('revoke update on sequence %s from service_role', r.ident);
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

-- Everything the project created so far (by name: a database that adopts
-- SignalsLoop may hold its own objects in public, which keep their grants).
select public.lock_down_project_objects(array[
  -- tables
  'projects', 'project_members', 'project_integrations', 'posts', 'votes', 'comments', 'specs',
  'backbone_config', 'agents', 'events', 'event_deliveries', 'delivery_attempts',
  'sentiment_analysis', 'feedback_embeddings', 'themes', 'theme_feedback', 'duplicates',
  'priority_scores', 'notifications',
  -- functions
  'is_project_member', 'is_project_admin', 'post_project', 'add_project_owner', 'touch_updated_at',
  'count_votes', 'count_comments', 'events_fill_metadata', 'agent_secret', 'ring_doorbell', 'fan_out_event',
  'backoff_seconds', 'take_circuit_trial', 'expire_attempt', 'park_delivery', 'claim_delivery',
  'agent_writable_tables', 'apply_writes', 'publish_events', 'ring_next_in_project', 'record_agent_success',
  'record_agent_failure', 'lock_delivery', 'complete_delivery', 'fail_delivery', 'sweep_deliveries',
  'replay_deliveries', 'replay_event', 'replay_dead', 'match_feedback', 'recount_themes',
  'reserve_notification', 'finish_notification', 'publish_root_event', 'posts_publish', 'votes_publish',
  'comments_publish', 'specs_publish', 'run_periodic',
  -- 20261201000110_drain
  'delivery_is_due', 'take_claim', 'claim_result', 'claim_next', 'ring_next', 'record_ring_error',
  'collect_ring_errors',
  'changed_in_this_transaction', 'lock_down_project_objects']);

-- The lock-down helpers are for migrations (the owner) only.
revoke execute on function public.changed_in_this_transaction(xid), public.lock_down_project_objects(text[])
  from service_role;

-- What a signed-in member may do, table by table, matching the RLS policies
-- (20261128000100, 20261128000300, 20261128000400): read their projects' rows,
-- write feedback, votes, comments, spec edits and memberships. No policy, no
-- privilege: the backbone's tables are the service role's alone.
revoke insert, update, delete on public.projects, public.project_members, public.posts, public.votes,
  public.comments, public.specs, public.events, public.sentiment_analysis, public.themes,
  public.theme_feedback, public.duplicates, public.priority_scores, public.notifications from authenticated;
revoke all on public.project_integrations, public.feedback_embeddings, public.agents, public.event_deliveries,
  public.delivery_attempts, public.backbone_config from authenticated;
-- Project ids are made by the server: asking for one that exists must not
-- answer "duplicate key".
grant insert (name, slug, owner_id, settings) on public.projects to authenticated;
grant insert (project_id, user_id, role), delete on public.project_members to authenticated;
grant insert (project_id, title, body, author_id), update (title, body) on public.posts to authenticated;
grant insert (post_id, user_id), delete on public.votes to authenticated;
grant insert (post_id, author_id, body) on public.comments to authenticated;
grant update (title, status, content, linked_url) on public.specs to authenticated;
grant execute on function public.is_project_member(uuid), public.is_project_admin(uuid), public.post_project(uuid)
  to authenticated;

-- Helpers that only the backbone's own security-definer functions call (as
-- the owner, so they need no grant): not an API, not even the service role's.
-- agent_secret() would hand out the webhook secret. (A helper a later
-- migration dropped or re-signed is skipped.)
do $$
declare
  v_fn regprocedure;
begin
  for v_fn in
    select to_regprocedure(sig) from unnest(array[
      'public.agent_secret()', 'public.agent_writable_tables()', 'public.apply_writes(jsonb)',
      'public.backoff_seconds(integer)', 'public.expire_attempt(public.event_deliveries)',
      'public.lock_delivery(bigint)', 'public.park_delivery(bigint, text)',
      'public.publish_root_event(text, text, uuid, uuid, uuid, jsonb, text)', 'public.record_agent_failure(text)',
      'public.record_agent_success(text)', 'public.ring_doorbell(bigint[])', 'public.ring_next_in_project(text, uuid)',
      'public.take_circuit_trial(text)',
      -- 20261201000110_drain's inner steps of claim_delivery / claim_next
      'public.take_claim(public.event_deliveries, text, boolean)',
      'public.claim_result(text, bigint, uuid, integer, integer, text)',
      'public.delivery_is_due(public.event_deliveries)']) sig
    where to_regprocedure(sig) is not null
  loop
    execute format('revoke execute on function %s from service_role', v_fn);
  end loop;
end
$$;
