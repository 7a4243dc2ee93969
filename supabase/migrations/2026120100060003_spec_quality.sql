-- Spec versions, the spec.updated event, and the spec_quality agent's results.
--
-- specs.version counts edits of a spec's title or content (1 when created);
-- spec.updated is published on each such edit, with the new version. The
-- roadmap agent may subscribe to it too (it is a plain, catalogued event).

alter table public.specs add column version integer not null default 1 check (version >= 1);

create function public.specs_bump_version() returns trigger
language plpgsql set search_path = public, pg_temp as $$
begin
  if new.title is distinct from old.title or new.content is distinct from old.content then
    new.version := old.version + 1;
  else
    new.version := old.version;
  end if;
  return new;
end
$$;
create trigger specs_bump_version before update on public.specs
  for each row execute function public.specs_bump_version();

-- spec.updated for edits and for status changes without an event of their own
-- (approved and completed have theirs), with the spec's version; the one
-- definition, used by spec_quality and roadmap.
create or replace function public.specs_publish_updated() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_changed text[] := array_remove(array[
    case when new.title is distinct from old.title then 'title' end,
    case when new.content is distinct from old.content then 'content' end,
    case when new.status is distinct from old.status and new.status not in ('approved', 'completed')
         then 'status' end], null);
begin
  if cardinality(v_changed) > 0 then
    perform public.publish_root_event('spec.updated', 'spec', new.id, new.project_id, null,
      jsonb_build_object('spec_id', new.id, 'title', new.title, 'status', new.status, 'theme_id', new.theme_id,
                         'linked_url', new.linked_url, 'previous_status', old.status,
                         'changed', to_jsonb(v_changed), 'version', new.version,
                         'previous_version', old.version),
      'db.specs');
  end if;
  return null;
end
$$;
drop trigger if exists specs_publish_updated on public.specs;
create trigger specs_publish_updated after update on public.specs
  for each row execute function public.specs_publish_updated();

create table public.spec_quality_checks (
  id uuid primary key,
  project_id uuid not null references public.projects (id) on delete cascade,
  spec_id uuid not null references public.specs (id) on delete cascade,
  spec_version integer not null,
  score integer not null check (score between 0 and 100),
  -- [{"item", "passed", "points", "max_points", "finding", "fix"}]
  findings jsonb not null default '[]'::jsonb check (jsonb_typeof(findings) = 'array'),
  model text not null,
  source_event_id uuid,
  checked_at timestamptz not null default now(),
  unique (spec_id, spec_version)
);
create index spec_quality_checks_project_idx on public.spec_quality_checks (project_id, checked_at desc);
alter table public.spec_quality_checks enable row level security;
create policy spec_quality_checks_read on public.spec_quality_checks for select to authenticated
  using (public.is_project_member(project_id));

-- Agents may write spec_quality_checks through apply_writes: added to whatever
-- the list holds by now (other migrations extend it too), not a copy of it.
do $$
declare
  v_tables text[] := public.agent_writable_tables();
begin
  if not ('spec_quality_checks' = any (v_tables)) then
    v_tables := v_tables || 'spec_quality_checks'::text;
  end if;
  execute format('create or replace function public.agent_writable_tables() returns text[] '
                 'language sql immutable as %L', format('select %L::text[]', v_tables));
end
$$;

revoke execute on function public.specs_bump_version(), public.specs_publish_updated(),
  public.agent_writable_tables() from public, anon, authenticated;
grant execute on function public.specs_bump_version(), public.specs_publish_updated(),
  public.agent_writable_tables() to service_role;

update public.agents
   set event_types = array['spec.auto_drafted', 'spec.updated'], enabled = true, updated_at = now(),
       description = 'Scores a spec against a completeness and clarity rubric, per version'
 where name = 'spec_quality';
