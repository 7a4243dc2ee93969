-- Rules of the domain the database enforces, whoever writes: valid project
-- settings, who may approve, complete and link specs (and to what), who may
-- change whose role, and a rate limit on the events a member can make in a
-- loop (votes).

-- --- project settings -------------------------------------------------------------------------
-- The tunables the agents read (functions/*/agent.py). A bad value is refused
-- when written, with the key and what it must be; unknown keys pass (new
-- agents bring their own). Returns null when valid. The same rules as
-- shared/project_settings.py, which fails a delivery permanently on settings
-- written before this trigger existed.
create function public.project_settings_problem(p_settings jsonb) returns text
language plpgsql immutable set search_path = public, pg_temp as $$
declare
  v_key text;
  v_value jsonb;
  v_number numeric;
begin
  if p_settings is null or jsonb_typeof(p_settings) <> 'object' then
    return 'projects.settings must be a JSON object';
  end if;
  for v_key, v_value in select key, value from jsonb_each(p_settings) loop
    v_number := case when jsonb_typeof(v_value) = 'number' then v_value::text::numeric end;
    if v_key in ('duplicate_threshold', 'theme_similarity')
       and (v_number is null or v_number <= 0 or v_number > 1) then
      return format('projects.settings.%s must be a number in (0, 1], not %s', v_key, v_value);
    elsif v_key in ('theme_threshold', 'slack_rate_per_minute')
       -- written as a whole number (20, not 20.0: JSON readers make that a float)
       and (v_number is null or v_value::text !~ '^[0-9]+$' or v_number < 1 or v_number > 100000) then
      return format('projects.settings.%s must be a whole number from 1 to 100000, not %s', v_key, v_value);
    elsif v_key = 'notify_min_importance'
       and (jsonb_typeof(v_value) <> 'string' or v_value #>> '{}' not in ('low', 'normal', 'high', 'urgent')) then
      return format('projects.settings.%s must be one of "low", "normal", "high", "urgent", not %s', v_key, v_value);
    end if;
  end loop;
  return null;
end
$$;

create function public.projects_check_settings() returns trigger
language plpgsql set search_path = public, pg_temp as $$
declare
  v_problem text := public.project_settings_problem(new.settings);
begin
  if v_problem is not null then
    raise exception using errcode = '23514', message = v_problem,
      hint = 'see "Per-project tunables" in README.md';
  end if;
  return new;
end
$$;
create trigger projects_check_settings before insert or update of settings on public.projects
  for each row execute function public.projects_check_settings();

-- --- roles ----------------------------------------------------------------------------------------
create function public.is_project_owner(p_project_id uuid) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  select exists (
    select 1 from public.project_members m
    where m.project_id = p_project_id and m.user_id = auth.uid() and m.role = 'owner'
  )
$$;

-- Owners and admins invite and remove members; only owners invite or remove
-- admins; nobody removes an owner through the API.
drop policy members_invite on public.project_members;
drop policy members_remove on public.project_members;
create policy members_invite on public.project_members for insert to authenticated
  with check ((role = 'member' and public.is_project_admin(project_id))
              or (role = 'admin' and public.is_project_owner(project_id)));
create policy members_remove on public.project_members for delete to authenticated
  using ((role = 'member' and public.is_project_admin(project_id))
         or (role = 'admin' and public.is_project_owner(project_id)));

-- --- specs ------------------------------------------------------------------------------------------
-- Links are https URLs (no javascript:, data: or plain http in a dashboard
-- link). not valid: rows written before keep working, every new write is checked.
alter table public.specs add constraint specs_linked_url_https
  check (linked_url is null or linked_url ~ '^https://[^[:space:]/?#]+[^[:space:]]*$') not valid;

-- Approving, completing and linking a spec is for the project's owners and
-- admins. Applies to signed-in users; the service role and the owner
-- (agents, operators) are not members and are trusted.
create function public.specs_guard() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  if auth.uid() is null or pg_has_role(current_user, 'service_role', 'member') then
    return new;
  end if;
  if ((new.status is distinct from old.status and new.status in ('approved', 'completed'))
      or new.linked_url is distinct from old.linked_url)
     and not public.is_project_admin(new.project_id) then
    raise exception using errcode = '42501',
      message = 'only the project''s owners and admins may approve, complete or link a spec';
  end if;
  return new;
end
$$;
create trigger specs_guard before update on public.specs
  for each row execute function public.specs_guard();

-- --- rate limits ----------------------------------------------------------------------------------
-- A member voting and unvoting in a loop would make one feedback.voted event
-- per click, each fanned out to agents. Beyond the limit the vote still counts
-- (posts.vote_count is recounted) but no event is published; the window
-- records how many were held back, for `signalsloop agents` and the
-- public.rate_limit_hits view.
alter table public.backbone_config
  add column vote_events_per_minute integer not null default 30 check (vote_events_per_minute >= 1);

create table public.event_rate_limits (
  project_id uuid not null references public.projects (id) on delete cascade,
  user_id uuid not null,
  event_type text not null,
  window_start timestamptz not null,
  emitted integer not null default 0,
  suppressed integer not null default 0,
  last_suppressed_at timestamptz,
  primary key (project_id, user_id, event_type, window_start)
);
alter table public.event_rate_limits enable row level security;

-- True when the member may publish one more event of this type now (and
-- counts it); false, recorded, when the limit bit.
create function public.take_event_allowance(p_project_id uuid, p_user_id uuid, p_event_type text,
                                            p_per_minute integer) returns boolean
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_window timestamptz := date_trunc('minute', now());
  v_emitted integer;
begin
  insert into public.event_rate_limits (project_id, user_id, event_type, window_start)
  values (p_project_id, p_user_id, p_event_type, v_window) on conflict do nothing;
  select emitted into v_emitted from public.event_rate_limits
   where project_id = p_project_id and user_id = p_user_id and event_type = p_event_type
     and window_start = v_window
     for update;
  if v_emitted < p_per_minute then
    update public.event_rate_limits set emitted = emitted + 1
     where project_id = p_project_id and user_id = p_user_id and event_type = p_event_type
       and window_start = v_window;
    return true;
  end if;
  update public.event_rate_limits set suppressed = suppressed + 1, last_suppressed_at = now()
   where project_id = p_project_id and user_id = p_user_id and event_type = p_event_type
     and window_start = v_window;
  return false;
end
$$;

create or replace function public.votes_publish() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_vote public.votes := coalesce(new, old);
  v_post public.posts;
begin
  select * into v_post from public.posts where id = v_vote.post_id;
  if found and public.take_event_allowance(v_post.project_id, v_vote.user_id, 'feedback.voted',
                                           (select vote_events_per_minute from public.backbone_config)) then
    perform public.publish_root_event('feedback.voted', 'feedback', v_post.id, v_post.project_id, v_vote.user_id,
      jsonb_build_object('feedback_id', v_post.id, 'user_id', v_vote.user_id,
                         'delta', case when tg_op = 'INSERT' then 1 else -1 end,
                         'vote_count', v_post.vote_count),
      'db.votes');
  end if;
  return null;
end
$$;

create view public.rate_limit_hits with (security_invoker = true) as
  select project_id, user_id, event_type, window_start, emitted, suppressed, last_suppressed_at
    from public.event_rate_limits
   where suppressed > 0;

select public.lock_down_project_objects();
-- (lock_down_project_objects() relies on this migration running in one
-- transaction, as `signalsloop db migrate` and `supabase db push` run each
-- file; the new table and view are closed by name too.)
revoke all on public.event_rate_limits, public.rate_limit_hits from anon, authenticated;
grant execute on function public.is_project_owner(uuid) to authenticated;
-- The settings trigger runs as the member writing a project: a pure check.
grant execute on function public.project_settings_problem(jsonb) to authenticated;
revoke execute on function public.take_event_allowance(uuid, uuid, text, integer) from service_role;
-- Operators read the view with the service role; members see nothing of it.
revoke insert, update, delete on public.rate_limit_hits from service_role;
