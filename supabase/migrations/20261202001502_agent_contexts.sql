-- What the notify and priority agents read for one event, in one call each.
--
-- notify hears every event: in the pg_net benchmark's burst it runs about
-- half of all deliveries, and it was the function using the most CPU. Its
-- load made five round trips per delivery (the project's settings, the
-- post, the post's sentiment, the project's recent Slack sends, the stored
-- notification of the dedupe key). Over PostgREST each is an HTTP request.
-- The first four are one call now; the dedupe lookup stays apart, as its
-- key is computed from what the first four return.
--
-- The rate limit counts the project's last slack_rate_per_minute sends
-- (p_default_rate when the project sets none; a value that is not a number
-- is left to the agent's settings check, which names it).
--
-- Security invoker: it reads as the caller (the service role, which reads
-- these tables already), and only the given project's rows: a post of
-- another project is not returned, whatever id the event carries.

create function public.notify_context(p_project_id uuid, p_feedback_id uuid, p_default_rate integer)
returns jsonb
language sql stable security invoker set search_path = public, pg_temp as $$
  select jsonb_build_object(
    'settings', (select p.settings from public.projects p where p.id = p_project_id),
    'post', (select to_jsonb(f) from public.posts f where f.id = p_feedback_id and f.project_id = p_project_id),
    'sentiment', (select jsonb_build_object('label', s.label, 'score', s.score)
                    from public.sentiment_analysis s
                   where s.feedback_id = p_feedback_id and s.project_id = p_project_id),
    'recent_sent', (select coalesce(jsonb_agg(n.sent_at order by n.sent_at desc), '[]'::jsonb)
                      from (select x.sent_at from public.notifications x
                             where x.project_id = p_project_id and x.status = 'sent' and x.sent_at is not null
                             order by x.sent_at desc
                             limit (select greatest(0, least(100000, case
                                      when jsonb_typeof(p.settings -> 'slack_rate_per_minute') = 'number'
                                      then floor((p.settings ->> 'slack_rate_per_minute')::numeric)::integer
                                      else p_default_rate end))
                                      from public.projects p where p.id = p_project_id)) n))
$$;

-- The rate limit's read: the project's newest sends, without walking every
-- notification the project ever had (notifications_project_idx orders by
-- created_at and holds every status).
create index notifications_project_sent_idx on public.notifications (project_id, sent_at desc)
  where status = 'sent';

select public.lock_down_project_objects(array['notify_context']);

-- The priority agent's reads, in one call (it made six round trips per
-- delivery: the post, its sentiment, its theme link, the theme's size, and
-- its duplicates in both directions). Same rules: security invoker, and
-- nothing of a post outside the given project.
create function public.priority_context(p_project_id uuid, p_feedback_id uuid)
returns jsonb
language sql stable security invoker set search_path = public, pg_temp as $$
  select jsonb_build_object(
    'post', (select to_jsonb(f) from public.posts f where f.id = p_feedback_id and f.project_id = p_project_id),
    'sentiment_score', (select s.score from public.sentiment_analysis s
                         where s.feedback_id = p_feedback_id and s.project_id = p_project_id),
    'theme_size', coalesce((select t.feedback_count from public.theme_feedback l
                              join public.themes t on t.id = l.theme_id
                             where l.feedback_id = p_feedback_id and l.project_id = p_project_id), 0),
    'duplicates', (select count(*) from public.duplicates d
                    where d.feedback_id = p_feedback_id and d.project_id = p_project_id)
                + (select count(*) from public.duplicates d
                    where d.duplicate_of = p_feedback_id and d.project_id = p_project_id))
$$;

select public.lock_down_project_objects(array['priority_context']);
