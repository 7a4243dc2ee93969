-- Smart notifications: digests, suppression with a reason, notification ids
-- known before sending (Slack buttons carry them), and what people said about
-- each message ("Useful" / "Not useful", once per message and person).

alter table public.notifications drop constraint notifications_status_check;
alter table public.notifications add constraint notifications_status_check
  -- queued: waits for the project's next digest; digested: went out in one;
  -- suppressed: deliberately not notified (reason says why)
  check (status in ('recorded', 'sending', 'sent', 'failed', 'unknown', 'rate_limited', 'unconfigured',
                    'queued', 'digested', 'suppressed'));
alter table public.notifications
  add column reason text,
  -- The digest message (its dedupe_key) that carried this one.
  add column digest_key text,
  add column digested_at timestamptz;
create index notifications_queued_idx on public.notifications (project_id, created_at)
  where digest_key is null and status in ('queued', 'rate_limited');

-- As in 20261128000300_agent_results.sql, plus a caller-chosen id (derived from
-- the dedupe key, so the message can carry it) and the reason.
create or replace function public.reserve_notification(p_row jsonb) returns boolean
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_id uuid;
begin
  insert into public.notifications (id, dedupe_key, project_id, event_id, event_type, importance, channel, text,
                                    reason, status)
  values (coalesce((p_row ->> 'id')::uuid, gen_random_uuid()), p_row ->> 'dedupe_key',
          (p_row ->> 'project_id')::uuid, (p_row ->> 'event_id')::uuid,
          p_row ->> 'event_type', coalesce(p_row ->> 'importance', 'normal'), p_row ->> 'channel',
          p_row ->> 'text', p_row ->> 'reason', 'sending')
  on conflict (dedupe_key) do update set status = 'sending', error = null
    where notifications.status = 'failed'
  returning id into v_id;
  return v_id is not null;
end
$$;

-- What the project's next digest carries: queued and rate-limited
-- notifications not yet in a digest, created before the tick.
create function public.notifications_to_digest(p_project_id uuid, p_before timestamptz)
returns table (dedupe_key text, importance text, text text, status text, event_type text, created_at timestamptz)
language sql stable security definer set search_path = public, pg_temp as $$
  select n.dedupe_key, n.importance, n.text, n.status, n.event_type, n.created_at
    from public.notifications n
   where n.project_id = p_project_id and n.digest_key is null and n.status in ('queued', 'rate_limited')
     and n.created_at < coalesce(p_before, now())
   order by n.created_at, n.dedupe_key
   limit 500
$$;

create table public.notification_feedback (
  id bigint generated always as identity primary key,
  notification_id uuid not null references public.notifications (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  slack_user_id text not null check (length(slack_user_id) between 1 and 100),
  slack_user_name text,
  verdict text not null check (verdict in ('useful', 'not_useful')),
  created_at timestamptz not null default now(),
  unique (notification_id, slack_user_id)
);
create index notification_feedback_project_idx on public.notification_feedback (project_id, created_at desc);
alter table public.notification_feedback enable row level security;
create policy notification_feedback_read on public.notification_feedback for select to authenticated
  using (public.is_project_member(project_id));

-- One verdict per message and person: the first click counts, repeats (a
-- double click, Slack redelivering the callback) change nothing.
-- Returns 'recorded', 'repeated' or 'unknown_notification'.
create function public.record_notification_feedback(p_notification_id uuid, p_slack_user_id text,
                                                    p_verdict text, p_slack_user_name text default null)
returns text
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_project uuid;
begin
  select project_id into v_project from public.notifications where id = p_notification_id;
  if v_project is null then
    return 'unknown_notification';
  end if;
  insert into public.notification_feedback (notification_id, project_id, slack_user_id, slack_user_name, verdict)
  values (p_notification_id, v_project, p_slack_user_id, p_slack_user_name, p_verdict)
  on conflict (notification_id, slack_user_id) do nothing;
  return case when found then 'recorded' else 'repeated' end;
end
$$;
revoke execute on function public.reserve_notification(jsonb), public.notifications_to_digest(uuid, timestamptz),
  public.record_notification_feedback(uuid, text, text, text) from public, anon, authenticated;
grant execute on function public.reserve_notification(jsonb), public.notifications_to_digest(uuid, timestamptz),
  public.record_notification_feedback(uuid, text, text, text) to service_role;
