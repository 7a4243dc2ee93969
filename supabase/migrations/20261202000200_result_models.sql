-- Each result records the model that produced it: the notifications notify
-- writes (sent, queued, digested, rate-limited or suppressed) now say which
-- rules scored and worded them, and priority scores which formula computed
-- them, as every other agent's result table does (tests/supabase/
-- test_result_models.py checks every agent-writable table). Rows written
-- before this migration keep null (unknown).

alter table public.notifications add column model text;
comment on column public.notifications.model is
  'the rules (or model) that scored and worded this notification, e.g. notify-rules-1; null before it was recorded';
alter table public.priority_scores add column model text;
comment on column public.priority_scores.model is
  'the formula that computed the score, e.g. priority-formula-1; null before it was recorded';

-- As in 2026120100060002_smart_notifications.sql, plus the model. create or
-- replace keeps the function's grants (service_role only).
create or replace function public.reserve_notification(p_row jsonb) returns boolean
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_id uuid;
begin
  insert into public.notifications (id, dedupe_key, project_id, event_id, event_type, importance, channel, text,
                                    reason, model, status)
  values (coalesce((p_row ->> 'id')::uuid, gen_random_uuid()), p_row ->> 'dedupe_key',
          (p_row ->> 'project_id')::uuid, (p_row ->> 'event_id')::uuid,
          p_row ->> 'event_type', coalesce(p_row ->> 'importance', 'normal'), p_row ->> 'channel',
          p_row ->> 'text', p_row ->> 'reason', p_row ->> 'model', 'sending')
  on conflict (dedupe_key) do update set status = 'sending', error = null
    where notifications.status = 'failed'
  returning id into v_id;
  return v_id is not null;
end
$$;
