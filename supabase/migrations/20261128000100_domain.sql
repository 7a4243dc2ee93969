-- Domain tables a SignalsLoop web app writes: projects, membership, feedback
-- (posts), votes, comments and specs. RLS: members read their projects and
-- add feedback, votes and comments to them; anon gets nothing.

create table public.projects (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  owner_id uuid references auth.users (id) on delete set null,
  -- Tunables per project: theme_threshold, duplicate_threshold, slack_rate_per_minute, ...
  settings jsonb not null default '{}'::jsonb check (jsonb_typeof(settings) = 'object'),
  created_at timestamptz not null default now()
);

create table public.project_members (
  project_id uuid not null references public.projects (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member' check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  primary key (project_id, user_id)
);
create index project_members_user_idx on public.project_members (user_id);

-- Secrets for outbound integrations: service role only (no policies).
create table public.project_integrations (
  project_id uuid primary key references public.projects (id) on delete cascade,
  slack_bot_token text,
  slack_channel text,
  slack_webhook_url text,
  updated_at timestamptz not null default now()
);

create table public.posts (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references public.projects (id) on delete cascade,
  author_id uuid references auth.users (id) on delete set null,
  title text not null check (length(title) between 1 and 500),
  body text not null default '' check (length(body) <= 20000),
  status text not null default 'open'
    check (status in ('open', 'under_review', 'planned', 'in_progress', 'done', 'closed')),
  vote_count integer not null default 0 check (vote_count >= 0),
  comment_count integer not null default 0 check (comment_count >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index posts_project_created_idx on public.posts (project_id, created_at desc);

create table public.votes (
  post_id uuid not null references public.posts (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (post_id, user_id)
);
create index votes_user_idx on public.votes (user_id);

create table public.comments (
  id uuid primary key default gen_random_uuid(),
  post_id uuid not null references public.posts (id) on delete cascade,
  author_id uuid references auth.users (id) on delete set null,
  body text not null check (length(body) between 1 and 10000),
  created_at timestamptz not null default now()
);
create index comments_post_idx on public.comments (post_id, created_at);

create table public.specs (
  id uuid primary key default gen_random_uuid(),
  project_id uuid not null references public.projects (id) on delete cascade,
  theme_id uuid,
  title text not null check (length(title) between 1 and 300),
  status text not null default 'draft'
    check (status in ('draft', 'approved', 'in_progress', 'completed', 'rejected')),
  content jsonb not null default '{}'::jsonb,
  linked_url text,
  source text not null default 'human' check (source in ('human', 'agent')),
  model text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index specs_project_idx on public.specs (project_id, created_at desc);
-- One automatic draft per theme, whatever retries happen.
create unique index specs_one_auto_draft_per_theme on public.specs (theme_id) where source = 'agent';

-- Is the caller a member of the project? security definer so policies can ask
-- without recursing into project_members' own policy.
create function public.is_project_member(p_project_id uuid) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  select exists (
    select 1 from public.project_members m
    where m.project_id = p_project_id and m.user_id = auth.uid()
  )
$$;

-- The project of a post, for policies; null unless the caller is a member, so
-- it cannot be used to map other projects' post ids.
create function public.is_project_admin(p_project_id uuid) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  select exists (
    select 1 from public.project_members m
    where m.project_id = p_project_id and m.user_id = auth.uid() and m.role in ('owner', 'admin')
  )
$$;

create function public.post_project(p_post_id uuid) returns uuid
language sql stable security definer set search_path = public, pg_temp as $$
  select p.project_id from public.posts p
   where p.id = p_post_id
     and exists (select 1 from public.project_members m
                  where m.project_id = p.project_id and m.user_id = auth.uid())
$$;

-- Creating a project makes its creator the owner.
create function public.add_project_owner() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  if new.owner_id is not null then
    insert into public.project_members (project_id, user_id, role)
    values (new.id, new.owner_id, 'owner') on conflict do nothing;
  end if;
  return new;
end
$$;
create trigger projects_add_owner after insert on public.projects
  for each row execute function public.add_project_owner();

create function public.touch_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;
create trigger posts_touch before update on public.posts
  for each row execute function public.touch_updated_at();
create trigger specs_touch before update on public.specs
  for each row execute function public.touch_updated_at();

-- Denormalised counters, kept by the database so every writer agrees.
create function public.count_votes() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.posts p set vote_count = (select count(*) from public.votes v where v.post_id = p.id)
  where p.id = coalesce(new.post_id, old.post_id);
  return null;
end
$$;
create trigger votes_count after insert or delete on public.votes
  for each row execute function public.count_votes();

create function public.count_comments() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.posts p set comment_count = (select count(*) from public.comments c where c.post_id = p.id)
  where p.id = coalesce(new.post_id, old.post_id);
  return null;
end
$$;
create trigger comments_count after insert or delete on public.comments
  for each row execute function public.count_comments();

alter table public.projects enable row level security;
alter table public.project_members enable row level security;
alter table public.project_integrations enable row level security;
alter table public.posts enable row level security;
alter table public.votes enable row level security;
alter table public.comments enable row level security;
alter table public.specs enable row level security;

-- The owner reads a project they just created (insert ... returning) before
-- the trigger-made membership is visible to the policy.
create policy projects_read on public.projects for select to authenticated
  using (owner_id = auth.uid() or public.is_project_member(id));
create policy projects_create on public.projects for insert to authenticated
  with check (owner_id = auth.uid());

create policy members_read on public.project_members for select to authenticated
  using (user_id = auth.uid() or public.is_project_member(project_id));
create policy members_invite on public.project_members for insert to authenticated
  with check (public.is_project_admin(project_id) and role <> 'owner');
create policy members_remove on public.project_members for delete to authenticated
  using (public.is_project_admin(project_id) and role <> 'owner');

create policy posts_read on public.posts for select to authenticated
  using (public.is_project_member(project_id));
create policy posts_create on public.posts for insert to authenticated
  with check (public.is_project_member(project_id) and author_id = auth.uid());
create policy posts_edit_own on public.posts for update to authenticated
  using (author_id = auth.uid()) with check (public.is_project_member(project_id));

create policy votes_read on public.votes for select to authenticated
  using (public.is_project_member(public.post_project(post_id)));
create policy votes_create on public.votes for insert to authenticated
  with check (user_id = auth.uid() and public.is_project_member(public.post_project(post_id)));
create policy votes_delete_own on public.votes for delete to authenticated
  using (user_id = auth.uid());

create policy comments_read on public.comments for select to authenticated
  using (public.is_project_member(public.post_project(post_id)));
create policy comments_create on public.comments for insert to authenticated
  with check (author_id = auth.uid() and public.is_project_member(public.post_project(post_id)));

create policy specs_read on public.specs for select to authenticated
  using (public.is_project_member(project_id));
create policy specs_update on public.specs for update to authenticated
  using (public.is_project_member(project_id)) with check (public.is_project_member(project_id));

-- Column privileges: members write content, never counters, status or the
-- project a post belongs to (votes and the notify/priority agents trust them).
revoke insert, update on public.posts, public.votes, public.comments from anon, authenticated;
grant insert (project_id, title, body, author_id) on public.posts to authenticated;
grant update (title, body) on public.posts to authenticated;
grant insert (post_id, user_id) on public.votes to authenticated;
grant insert (post_id, author_id, body) on public.comments to authenticated;
-- Specs: people edit the text, status and link; where a draft came from (theme,
-- source, model, project) is the agents' to say.
revoke insert, update on public.specs from authenticated;
grant update (title, status, content, linked_url) on public.specs to authenticated;
revoke update on public.project_members from authenticated;
revoke insert, update on public.projects, public.project_members, public.specs from anon;
revoke update on public.projects from authenticated;
