-- Phase 3 agents: competitive, engagement and roadmap. Their result tables
-- (RLS: members of the project read; the competitor catalogue is edited by
-- the project's members), spec edits and spec comments as events (roadmap
-- progress), and the registry entries enabled with the plan's subscriptions.

-- --- competitive ---------------------------------------------------------------

-- Each project's catalogue: a name, other names it goes by, and its domains.
create table public.competitors (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references public.projects (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 100),
  aliases text[] not null default '{}' check (cardinality(aliases) <= 50),
  domains text[] not null default '{}' check (cardinality(domains) <= 20),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index competitors_project_name_idx on public.competitors (project_id, lower(name));
create trigger competitors_touch before update on public.competitors
  for each row execute function public.touch_updated_at();

-- One row per (feedback, competitor) it mentions.
create table public.competitor_mentions (
  feedback_id uuid not null references public.posts (id) on delete cascade,
  competitor_id uuid not null references public.competitors (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  matched text not null,
  quote text not null,
  sentiment text check (sentiment in ('negative', 'neutral', 'positive')),
  switching_intent boolean not null default false,
  features text[] not null default '{}',
  model text not null,
  source_event_id uuid,
  mentioned_at timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (feedback_id, competitor_id)
);
create index competitor_mentions_competitor_idx on public.competitor_mentions (competitor_id, mentioned_at);
create index competitor_mentions_project_idx on public.competitor_mentions (project_id, mentioned_at desc);

-- A threat is identified once per competitor per fixed window.
create table public.competitive_threats (
  competitor_id uuid not null references public.competitors (id) on delete cascade,
  window_start timestamptz not null,
  project_id uuid not null references public.projects (id) on delete cascade,
  window_days integer not null check (window_days >= 1),
  mentions integer not null check (mentions >= 1),
  threshold integer not null check (threshold >= 1),
  feedback_ids uuid[] not null,
  model text not null,
  source_event_id uuid,
  identified_at timestamptz not null default now(),
  primary key (competitor_id, window_start)
);
create index competitive_threats_project_idx on public.competitive_threats (project_id, identified_at desc);

-- A competitor's mentions in one window, for the threat count (not its whole history).
create function public.competitor_mentions_between(p_competitor_id uuid, p_from timestamptz, p_to timestamptz)
returns setof public.competitor_mentions
language sql stable security definer set search_path = public, pg_temp as $$
  select * from public.competitor_mentions m
   where m.competitor_id = p_competitor_id and m.mentioned_at >= p_from and m.mentioned_at < p_to
   order by m.mentioned_at, m.feedback_id
$$;
revoke execute on function public.competitor_mentions_between(uuid, timestamptz, timestamptz)
  from public, anon, authenticated;
grant execute on function public.competitor_mentions_between(uuid, timestamptz, timestamptz) to service_role;

-- --- engagement ----------------------------------------------------------------

-- Every contribution, once (keyed by the event that reported it).
create table public.user_activity (
  source_event_id uuid primary key,
  project_id uuid not null references public.projects (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null check (kind in ('post', 'comment', 'vote')),
  feedback_id uuid,
  at timestamptz not null
);
create index user_activity_user_idx on public.user_activity (project_id, user_id, at desc);

create table public.user_engagement (
  project_id uuid not null references public.projects (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  posts integer not null default 0 check (posts >= 0),
  comments integer not null default 0 check (comments >= 0),
  votes integer not null default 0 check (votes >= 0),
  recent integer not null default 0 check (recent >= 0),
  score real not null default 0 check (score >= 0),
  last_active_at timestamptz not null,
  status text not null default 'active' check (status in ('active', 'engaged', 'at_risk')),
  engaged_at timestamptz,
  at_risk_at timestamptz,
  crossings integer not null default 0 check (crossings >= 0),
  model text not null,
  source_event_id uuid,
  updated_at timestamptz not null default now(),
  primary key (project_id, user_id)
);
create index user_engagement_status_idx on public.user_engagement (project_id, status);
create trigger user_engagement_touch before update on public.user_engagement
  for each row execute function public.touch_updated_at();

-- A user's totals and their contributions since p_since, for the engagement
-- agent (which must not read a power user's whole history on every vote).
create function public.engagement_activity(p_project_id uuid, p_user_id uuid, p_since timestamptz)
returns jsonb
language sql stable security definer set search_path = public, pg_temp as $$
  select jsonb_build_object(
    'totals', (select coalesce(jsonb_object_agg(t.kind, t.n), '{}'::jsonb)
                 from (select a.kind, count(*) as n from public.user_activity a
                        where a.project_id = p_project_id and a.user_id = p_user_id group by a.kind) t),
    'recent', (select coalesce(jsonb_agg(jsonb_build_object('event_id', a.source_event_id, 'kind', a.kind,
                                                            'at', a.at) order by a.at), '[]'::jsonb)
                 from public.user_activity a
                where a.project_id = p_project_id and a.user_id = p_user_id and a.at >= p_since))
$$;
revoke execute on function public.engagement_activity(uuid, uuid, timestamptz) from public, anon, authenticated;
grant execute on function public.engagement_activity(uuid, uuid, timestamptz) to service_role;

-- --- roadmap -------------------------------------------------------------------

-- People discuss a spec here; a comment counts as progress on its roadmap item.
create table public.spec_comments (
  id uuid primary key default gen_random_uuid(),
  spec_id uuid not null references public.specs (id) on delete cascade,
  author_id uuid references auth.users (id) on delete set null,
  body text not null check (length(body) between 1 and 10000),
  created_at timestamptz not null default now()
);
create index spec_comments_spec_idx on public.spec_comments (spec_id, created_at);

create table public.roadmap_items (
  spec_id uuid primary key references public.specs (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  title text not null,
  status text not null check (status in ('draft', 'approved', 'in_progress', 'completed', 'rejected')),
  target_date date,
  linked_url text,
  approved_at timestamptz,
  completed_at timestamptz,
  last_progress_at timestamptz not null,
  last_progress text not null,
  -- set when a stall is announced, cleared by the next progress
  stalled_at timestamptz,
  stall_reason text check (stall_reason in ('no_progress', 'past_target_date')),
  stalls integer not null default 0 check (stalls >= 0),
  overdue_announced_for date,
  model text not null,
  source_event_id uuid,
  source_event_at timestamptz,
  updated_at timestamptz not null default now()
);
create index roadmap_items_project_idx on public.roadmap_items (project_id, status);
create trigger roadmap_items_touch before update on public.roadmap_items
  for each row execute function public.touch_updated_at();

-- spec.updated (edits and status changes without an event of their own) comes
-- from 2026120100060003_spec_quality.sql; spec comments become spec.commented.

create function public.spec_comments_publish() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_spec public.specs;
begin
  select * into v_spec from public.specs where id = new.spec_id;
  perform public.publish_root_event('spec.commented', 'spec', v_spec.id, v_spec.project_id, new.author_id,
    jsonb_build_object('spec_id', v_spec.id, 'comment_id', new.id, 'body', new.body, 'author_id', new.author_id,
                       'status', v_spec.status),
    'db.spec_comments');
  return null;
end
$$;
create trigger spec_comments_publish after insert on public.spec_comments
  for each row execute function public.spec_comments_publish();

revoke execute on function public.spec_comments_publish() from public, anon, authenticated;
grant execute on function public.spec_comments_publish() to service_role;

-- --- agents may write their tables through complete_delivery --------------------

create or replace function public.agent_writable_tables() returns text[]
language sql immutable as $$
  select array['sentiment_analysis', 'feedback_embeddings', 'themes', 'theme_feedback',
               'duplicates', 'priority_scores', 'notifications', 'specs',
               'competitor_mentions', 'competitive_threats', 'user_activity', 'user_engagement',
               'roadmap_items']
$$;

-- --- RLS and grants ------------------------------------------------------------------

alter table public.competitors enable row level security;
alter table public.competitor_mentions enable row level security;
alter table public.competitive_threats enable row level security;
alter table public.user_activity enable row level security;
alter table public.user_engagement enable row level security;
alter table public.spec_comments enable row level security;
alter table public.roadmap_items enable row level security;

create policy competitors_read on public.competitors for select to authenticated
  using (public.is_project_member(project_id));
create policy competitors_create on public.competitors for insert to authenticated
  with check (public.is_project_member(project_id));
create policy competitors_edit on public.competitors for update to authenticated
  using (public.is_project_member(project_id)) with check (public.is_project_member(project_id));
create policy competitors_delete on public.competitors for delete to authenticated
  using (public.is_project_member(project_id));
create policy competitor_mentions_read on public.competitor_mentions for select to authenticated
  using (public.is_project_member(project_id));
create policy competitive_threats_read on public.competitive_threats for select to authenticated
  using (public.is_project_member(project_id));
create policy user_activity_read on public.user_activity for select to authenticated
  using (public.is_project_member(project_id));
create policy user_engagement_read on public.user_engagement for select to authenticated
  using (public.is_project_member(project_id));
create policy spec_comments_read on public.spec_comments for select to authenticated
  using (exists (select 1 from public.specs s where s.id = spec_id and public.is_project_member(s.project_id)));
create policy spec_comments_create on public.spec_comments for insert to authenticated
  with check (author_id = auth.uid()
              and exists (select 1 from public.specs s where s.id = spec_id and public.is_project_member(s.project_id)));
create policy roadmap_items_read on public.roadmap_items for select to authenticated
  using (public.is_project_member(project_id));

-- Members edit the catalogue's content (never its id or dates) and write
-- comments; results are the agents' alone. anon holds nothing here.
revoke all on public.competitors, public.competitor_mentions, public.competitive_threats, public.user_activity,
  public.user_engagement, public.spec_comments, public.roadmap_items from anon;
revoke insert, update, delete, truncate, references, trigger on public.competitors, public.competitor_mentions,
  public.competitive_threats, public.user_activity, public.user_engagement, public.spec_comments,
  public.roadmap_items from authenticated;
grant select on public.competitors, public.competitor_mentions, public.competitive_threats, public.user_activity,
  public.user_engagement, public.spec_comments, public.roadmap_items to authenticated;
grant insert (project_id, name, aliases, domains), update (name, aliases, domains), delete
  on public.competitors to authenticated;
grant insert (spec_id, author_id, body) on public.spec_comments to authenticated;
grant select, insert, update, delete on public.competitors, public.competitor_mentions, public.competitive_threats,
  public.user_activity, public.user_engagement, public.spec_comments, public.roadmap_items to service_role;

-- --- the registry: built, so enabled, with the plan's subscriptions ----------------
-- engagement and roadmap read what their earlier deliveries wrote (counts,
-- crossings, stalls), so they run one delivery at a time per project.

update public.agents
   set event_types = array['feedback.created', 'competitor.mentioned'], enabled = true, timeout_ms = 60000,
       description = 'Finds competitor mentions, features and switching intent; identifies threats once per window'
 where name = 'competitive';
update public.agents
   set event_types = array['feedback.created', 'feedback.commented', 'feedback.voted', 'clock.tick'],
       enabled = true, serialize_by_project = true, timeout_ms = 15000,
       description = 'Activity, score and status per user; user.engaged once per crossing, user.at_risk once per silence'
 where name = 'engagement';
update public.agents
   set event_types = array['spec.approved', 'spec.linked', 'spec.completed', 'spec.updated', 'spec.commented',
                           'clock.tick'],
       enabled = true, serialize_by_project = true, timeout_ms = 15000,
       description = 'Roadmap item per approved spec; roadmap.updated on status or date, roadmap.stalled once per stall'
 where name = 'roadmap';
