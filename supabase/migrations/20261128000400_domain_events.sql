-- Domain changes become events: posts, votes, comments and specs publish
-- through triggers in the writer's transaction. Plus the agent registry seed,
-- RLS on the backbone tables and who may call what.

create function public.publish_root_event(p_type text, p_aggregate_type text, p_aggregate_id uuid,
                                          p_project_id uuid, p_user_id uuid, p_payload jsonb,
                                          p_producer text)
returns uuid
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_id uuid := gen_random_uuid();
begin
  insert into public.events (id, type, aggregate_type, aggregate_id, payload, metadata)
  values (v_id, p_type, p_aggregate_type, p_aggregate_id, p_payload,
          jsonb_build_object('project_id', p_project_id, 'user_id', coalesce(p_user_id, auth.uid()),
                             'timestamp', now(), 'correlation_id', v_id, 'causation_id', null,
                             'depth', 0, 'producer', p_producer));
  return v_id;
end
$$;

create function public.posts_publish() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_changed text[];
begin
  if tg_op = 'INSERT' then
    perform public.publish_root_event('feedback.created', 'feedback', new.id, new.project_id, new.author_id,
      jsonb_build_object('feedback_id', new.id, 'title', new.title, 'body', new.body,
                         'status', new.status, 'author_id', new.author_id, 'vote_count', new.vote_count),
      'db.posts');
    return null;
  end if;
  v_changed := array_remove(array[
    case when new.title is distinct from old.title then 'title' end,
    case when new.body is distinct from old.body then 'body' end,
    case when new.status is distinct from old.status then 'status' end], null);
  if cardinality(v_changed) > 0 then
    perform public.publish_root_event('feedback.updated', 'feedback', new.id, new.project_id, auth.uid(),
      jsonb_build_object('feedback_id', new.id, 'title', new.title, 'body', new.body,
                         'status', new.status, 'changed', to_jsonb(v_changed),
                         'previous', jsonb_build_object('title', old.title, 'body', old.body, 'status', old.status)),
      'db.posts');
  end if;
  return null;
end
$$;
create trigger posts_publish after insert or update on public.posts
  for each row execute function public.posts_publish();

-- Named after votes_count so it runs after the counter and sees the new total.
create function public.votes_publish() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_vote public.votes := coalesce(new, old);
  v_post public.posts;
begin
  select * into v_post from public.posts where id = v_vote.post_id;
  if found then
    perform public.publish_root_event('feedback.voted', 'feedback', v_post.id, v_post.project_id, v_vote.user_id,
      jsonb_build_object('feedback_id', v_post.id, 'user_id', v_vote.user_id,
                         'delta', case when tg_op = 'INSERT' then 1 else -1 end,
                         'vote_count', v_post.vote_count),
      'db.votes');
  end if;
  return null;
end
$$;
create trigger votes_publish after insert or delete on public.votes
  for each row execute function public.votes_publish();

create function public.comments_publish() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_post public.posts;
begin
  select * into v_post from public.posts where id = new.post_id;
  perform public.publish_root_event('feedback.commented', 'feedback', v_post.id, v_post.project_id, new.author_id,
    jsonb_build_object('feedback_id', v_post.id, 'comment_id', new.id, 'body', new.body,
                       'author_id', new.author_id, 'comment_count', v_post.comment_count),
    'db.comments');
  return null;
end
$$;
create trigger comments_publish after insert on public.comments
  for each row execute function public.comments_publish();

create function public.specs_publish() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_payload jsonb := jsonb_build_object('spec_id', new.id, 'title', new.title, 'status', new.status,
                                        'theme_id', new.theme_id, 'linked_url', new.linked_url,
                                        'previous_status', old.status);
begin
  if new.status is distinct from old.status and new.status = 'approved' then
    perform public.publish_root_event('spec.approved', 'spec', new.id, new.project_id, null, v_payload, 'db.specs');
  end if;
  if new.status is distinct from old.status and new.status = 'completed' then
    perform public.publish_root_event('spec.completed', 'spec', new.id, new.project_id, null, v_payload, 'db.specs');
  end if;
  if new.linked_url is not null and new.linked_url is distinct from old.linked_url then
    perform public.publish_root_event('spec.linked', 'spec', new.id, new.project_id, null, v_payload, 'db.specs');
  end if;
  return null;
end
$$;
create trigger specs_publish after update on public.specs
  for each row execute function public.specs_publish();

-- The registry, as data. Agents not built yet are registered disabled.
-- The registry, as data. Agents not built yet are registered disabled.
-- timeout_ms bounds one run (and its lease): room for an OpenAI call with a
-- retry and a re-ask where the agent asks AI, a few seconds elsewhere.
insert into public.agents (name, event_types, enabled, serialize_by_project, timeout_ms, description) values
  ('sentiment', array['feedback.created', 'feedback.updated'], true, false, 60000,
   'Scores sentiment of new and edited feedback'),
  ('duplicate', array['feedback.created'], true, true, 60000,
   'Finds near-duplicate feedback in the project (one at a time per project, so two posts arriving '
   'together still see each other)'),
  ('theme', array['sentiment.analyzed'], true, true, 60000,
   'Groups feedback into themes; announces themes crossing the spec threshold'),
  ('spec_writer', array['theme.threshold_reached'], true, false, 180000,
   'Drafts a spec for a theme that crossed its threshold'),
  ('notify', array['feedback.created', 'sentiment.analyzed', 'duplicate.found',
                   'theme.threshold_reached', 'spec.auto_drafted', 'priority.calculated'], true, false, 30000,
   'Scores importance and notifies the team on Slack'),
  ('priority', array['feedback.voted', 'sentiment.analyzed', 'duplicate.found'], true, false, 15000,
   'Scores priority from votes, sentiment, themes, duplicates and recency'),
  ('competitive', array['feedback.created', 'competitor.mentioned'], false, false, 60000,
   'Competitive intelligence (not built yet)'),
  ('engagement', array['feedback.created', 'feedback.voted', 'feedback.commented'], false, false, 15000,
   'User engagement and churn risk (not built yet)'),
  ('spec_quality', array['spec.auto_drafted', 'spec.approved'], false, false, 60000,
   'Spec quality checks (not built yet)'),
  ('roadmap', array['spec.approved', 'spec.linked', 'spec.completed'], false, false, 15000,
   'Roadmap health (not built yet)');

alter table public.events enable row level security;
alter table public.agents enable row level security;
alter table public.event_deliveries enable row level security;
alter table public.delivery_attempts enable row level security;
alter table public.backbone_config enable row level security;

-- Members may watch their projects' events (the live dashboard); only the
-- service role (which bypasses RLS) writes events, deliveries and results.
create policy events_read on public.events for select to authenticated
  using (public.is_project_member((metadata ->> 'project_id')::uuid));

do $$
begin
  if exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    alter publication supabase_realtime add table public.events;
  end if;
end
$$;

-- Functions are the backbone's API: the service role's, not the public's,
-- including functions later migrations create (Supabase's default privileges
-- would otherwise expose them through PostgREST).
revoke execute on all functions in schema public from public, anon, authenticated;
alter default privileges in schema public revoke execute on functions from anon, authenticated;
-- PUBLIC's EXECUTE is a global default, not a per-schema one.
alter default privileges revoke execute on functions from public;
alter default privileges in schema public grant execute on functions to service_role;
grant execute on function public.is_project_member(uuid), public.is_project_admin(uuid), public.post_project(uuid)
  to authenticated;
grant execute on all functions in schema public to service_role;
