-- What the duplicate agent reads for one post, in one call.
--
-- duplicate takes one post of a project at a time, so in a burst its chain
-- of round trips is the burst's length. It made three per post besides the
-- ledger's: the project's settings (for duplicate_threshold), the search,
-- and the titles of the posts found. duplicate_context makes them one; the
-- search is still match_feedback_hybrid, the one `signalsloop analyze
-- similarity` calls, with the project's threshold as its minimum score.
--
-- The threshold: the project's duplicate_threshold when it is a number, else
-- p_default_threshold (a value that is not a number is left to the agent's
-- settings check, which names it). Security invoker, like the other agents'
-- context reads; titles only of posts in the given project.

create function public.duplicate_context(p_project_id uuid, p_feedback_id uuid, p_model text,
                                         p_embedding double precision[], p_limit integer,
                                         p_default_threshold double precision)
returns jsonb
language plpgsql stable security invoker set search_path = public, pg_temp as $$
declare
  v_settings jsonb := (select p.settings from public.projects p where p.id = p_project_id);
  v_threshold double precision := case when jsonb_typeof(v_settings -> 'duplicate_threshold') = 'number'
                                       then (v_settings ->> 'duplicate_threshold')::double precision
                                       else p_default_threshold end;
begin
  return jsonb_build_object(
    'settings', v_settings,
    'matches', coalesce((
      select jsonb_agg(jsonb_build_object('feedback_id', m.feedback_id, 'score', m.score,
                                          'similarity', m.similarity, 'lexical', m.lexical,
                                          'title', coalesce(f.title, ''))
                       order by m.n)
        from public.match_feedback_hybrid(p_project_id, p_feedback_id, p_model, p_embedding, p_limit,
                                          v_threshold) with ordinality as m(feedback_id, score, similarity, lexical, n)
        left join public.posts f on f.id = m.feedback_id and f.project_id = p_project_id), '[]'::jsonb));
end
$$;

select public.lock_down_project_objects(array['duplicate_context']);
