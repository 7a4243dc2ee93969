-- Tables the agents write (through complete_delivery, service role only) and
-- members read: sentiment, embeddings, themes, duplicates, priorities,
-- notifications.

do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'vector') then
    if exists (select 1 from pg_namespace where nspname = 'extensions') then
      create extension if not exists vector with schema extensions;
    else
      create extension if not exists vector;
    end if;
  end if;
end
$$;

create table public.sentiment_analysis (
  feedback_id uuid primary key references public.posts (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  label text not null check (label in ('negative', 'neutral', 'positive')),
  score real not null check (score between -1 and 1),
  confidence real not null check (confidence between 0 and 1),
  model text not null,
  source_event_id uuid,
  -- when the event analysed was created: a late retry of an older event must
  -- not overwrite the analysis of a newer edit (see apply_writes' guard)
  source_event_at timestamptz,
  analyzed_at timestamptz not null default now()
);
create index sentiment_analysis_project_idx on public.sentiment_analysis (project_id, label);

-- Embeddings: pgvector where present (Supabase, the embedded default), a
-- plain real[] elsewhere. Vectors are unit length; only one model's vectors
-- are compared with each other.
do $outer$
declare
  v_schema text := (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                     where e.extname = 'vector');
  v_type text;
  v_similarity text;
begin
  if v_schema is not null then
    v_type := format('%I.vector', v_schema);
    v_similarity := format('(1 - (e.embedding operator(%I.<=>) p_embedding::%I.vector))::real', v_schema, v_schema);
  else
    v_type := 'real[]';
    v_similarity := '(select sum(a * b) from unnest(e.embedding, p_embedding) as t(a, b))::real';
  end if;
  execute format($t$
    create table public.feedback_embeddings (
      feedback_id uuid primary key references public.posts (id) on delete cascade,
      project_id uuid not null references public.projects (id) on delete cascade,
      model text not null,
      dims integer not null check (dims > 0),
      embedding %s not null,
      updated_at timestamptz not null default now()
    )$t$, v_type);
  execute format($f$
    create function public.match_feedback(p_project_id uuid, p_model text, p_embedding double precision[],
                                          p_limit integer default 5, p_min_similarity double precision default 0,
                                          p_exclude uuid default null)
    returns table (feedback_id uuid, similarity real)
    language sql stable security definer set search_path = public, pg_temp as $body$
      select * from (
        select e.feedback_id, %s as similarity
          from public.feedback_embeddings e
         where e.project_id = p_project_id and e.model = p_model
           and e.dims = cardinality(p_embedding)
           and (p_exclude is null or e.feedback_id <> p_exclude)
      ) m
      -- a zero vector gives NaN, which PostgreSQL sorts above everything: keep it out
      where m.similarity >= p_min_similarity and m.similarity <= 1.0001
      order by m.similarity desc, m.feedback_id
      limit p_limit
    $body$$f$, v_similarity);
end
$outer$;
create index feedback_embeddings_project_model_idx on public.feedback_embeddings (project_id, model);

create table public.themes (
  id uuid primary key,
  project_id uuid not null references public.projects (id) on delete cascade,
  name text not null check (length(name) between 1 and 120),
  embedding_model text not null,
  centroid real[] not null,
  feedback_count integer not null default 0,
  positive_count integer not null default 0,
  neutral_count integer not null default 0,
  negative_count integer not null default 0,
  threshold_reached_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index themes_project_idx on public.themes (project_id);

create table public.theme_feedback (
  feedback_id uuid primary key references public.posts (id) on delete cascade,
  theme_id uuid not null references public.themes (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  similarity real,
  sentiment_label text check (sentiment_label in ('negative', 'neutral', 'positive')),
  created_at timestamptz not null default now()
);
create index theme_feedback_theme_idx on public.theme_feedback (theme_id);

-- A theme's frequency and sentiment mix are derived from its links, by the
-- database, so concurrent or repeated writers can never make them drift.
create function public.recount_themes() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  update public.themes t
     set feedback_count = s.n, positive_count = s.pos, neutral_count = s.neu,
         negative_count = s.neg, updated_at = now()
    from (select tf.theme_id,
                 count(*) as n,
                 count(*) filter (where tf.sentiment_label = 'positive') as pos,
                 count(*) filter (where tf.sentiment_label = 'neutral') as neu,
                 count(*) filter (where tf.sentiment_label = 'negative') as neg
            from public.theme_feedback tf
           where tf.theme_id in (new.theme_id, old.theme_id)
           group by tf.theme_id
          union all
          select th.id, 0, 0, 0, 0 from public.themes th
           where th.id in (new.theme_id, old.theme_id)
             and not exists (select 1 from public.theme_feedback x where x.theme_id = th.id)) s
   where t.id = s.theme_id;
  return null;
end
$$;
create trigger theme_feedback_recount after insert or update or delete on public.theme_feedback
  for each row execute function public.recount_themes();

create table public.duplicates (
  feedback_id uuid not null references public.posts (id) on delete cascade,
  duplicate_of uuid not null references public.posts (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  similarity real not null check (similarity between -1 and 1),
  model text not null,
  source_event_id uuid,
  created_at timestamptz not null default now(),
  primary key (feedback_id, duplicate_of),
  check (feedback_id <> duplicate_of)
);
create index duplicates_of_idx on public.duplicates (duplicate_of);

create table public.priority_scores (
  feedback_id uuid primary key references public.posts (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  score real not null check (score between 0 and 100),
  components jsonb not null default '{}'::jsonb,
  source_event_id uuid,
  source_event_at timestamptz,
  calculated_at timestamptz not null default now()
);
create index priority_scores_project_idx on public.priority_scores (project_id, score desc);

-- Every notification is recorded before it is sent; dedupe_key makes a retry
-- find the record instead of sending again.
create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  dedupe_key text not null unique,
  project_id uuid not null references public.projects (id) on delete cascade,
  event_id uuid,
  event_type text,
  importance text not null default 'normal' check (importance in ('low', 'normal', 'high', 'urgent')),
  channel text,
  text text not null,
  status text not null default 'recorded'
    -- unknown: the send timed out after the request left; it may have been
    -- posted, so it is never sent again
    check (status in ('recorded', 'sending', 'sent', 'failed', 'unknown', 'rate_limited', 'unconfigured')),
  transport text,
  response jsonb,
  error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index notifications_project_idx on public.notifications (project_id, created_at desc);
create index notifications_channel_sent_idx on public.notifications (channel, sent_at) where status = 'sent';

-- Reserve a notification for sending: true when this caller may send it now
-- (new, or a previous attempt failed). A row left 'sending' by a crash is not
-- sent again: one key, at most one message.
create function public.reserve_notification(p_row jsonb) returns boolean
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_id uuid;
begin
  insert into public.notifications (dedupe_key, project_id, event_id, event_type, importance, channel, text, status)
  values (p_row ->> 'dedupe_key', (p_row ->> 'project_id')::uuid, (p_row ->> 'event_id')::uuid,
          p_row ->> 'event_type', coalesce(p_row ->> 'importance', 'normal'), p_row ->> 'channel',
          p_row ->> 'text', 'sending')
  on conflict (dedupe_key) do update set status = 'sending', error = null
    where notifications.status = 'failed'
  returning id into v_id;
  return v_id is not null;
end
$$;

create function public.finish_notification(p_dedupe_key text, p_status text, p_transport text,
                                           p_response jsonb default null, p_error text default null)
returns void
language sql security definer set search_path = public, pg_temp as $$
  update public.notifications
     set status = p_status, transport = p_transport, response = p_response, error = p_error,
         channel = coalesce(p_response ->> 'channel', channel),
         sent_at = case when p_status = 'sent' then now() else sent_at end
   where dedupe_key = p_dedupe_key
$$;

alter table public.sentiment_analysis enable row level security;
alter table public.feedback_embeddings enable row level security;
alter table public.themes enable row level security;
alter table public.theme_feedback enable row level security;
alter table public.duplicates enable row level security;
alter table public.priority_scores enable row level security;
alter table public.notifications enable row level security;

create policy sentiment_read on public.sentiment_analysis for select to authenticated
  using (public.is_project_member(project_id));
create policy themes_read on public.themes for select to authenticated
  using (public.is_project_member(project_id));
create policy theme_feedback_read on public.theme_feedback for select to authenticated
  using (public.is_project_member(project_id));
create policy duplicates_read on public.duplicates for select to authenticated
  using (public.is_project_member(project_id));
create policy priority_read on public.priority_scores for select to authenticated
  using (public.is_project_member(project_id));
create policy notifications_read on public.notifications for select to authenticated
  using (public.is_project_member(project_id));
