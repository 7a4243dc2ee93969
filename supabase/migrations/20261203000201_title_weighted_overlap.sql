-- Hybrid duplicate search: the title counts twice in the lexeme overlap.
--
-- A report's summary is what its reporter chose to say first, and two
-- duplicates' summaries agree more often than their descriptions (a log, a
-- stack trace, steps written differently). The weighted overlap
-- (20261202000501: the cosine of binary TF-IDF vectors, the rarity from the
-- planner's statistics) counted a title lexeme as much as any lexeme of a
-- pasted log. Now a lexeme the title holds (weight A of feedback_tsvector)
-- has twice the weight in its vector, as a title field weighted 2 does in
-- BM25F: overlap = sum over shared lexemes of w * t_a * t_b /
-- sqrt(sum over mine of w * t_a^2 * sum over theirs of w * t_b^2), w as
-- before, t = 2 for a title lexeme and 1 otherwise. Two texts that are each
-- all title or all body (lines of feedback, sentence pairs) score exactly
-- as before: a factor common to a whole vector cancels in the cosine.
--
-- The consensus list of match_feedback_hybrid (20261203000101: the overlap
-- plus the title overlap plus half the cosine) becomes the overlap plus a
-- fifth of the cosine, the title being in the overlap now. recall@5 on real
-- duplicate pairs (signalsloop.benchmarks.tracker_duplicates), before /
-- after: see docs/ai.md, "Real trackers". The title's factor (2) was not
-- tuned; the cosine's share in the third list was chosen among 0.2, 0.35
-- and 0.5 on the five trackers there. Calibrated score, p_min_score and the
-- result's columns unchanged.

create or replace function public.lexeme_overlaps_weighted(p_a tsvector, p_others tsvector[], p_shares jsonb)
returns table (n bigint, overlap double precision)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  with weight as (
    select x.lexeme,
           ln(1 / least(0.999, greatest(1e-9, coalesce((p_shares ->> x.lexeme)::double precision,
                                                       (p_shares ->> '')::double precision, 0.5)))) ^ 2 as w
      from (select distinct l as lexeme from unnest(tsvector_to_array(coalesce(p_a, ''::tsvector))) l
            union
            select l from unnest(p_others) o, unnest(tsvector_to_array(coalesce(o, ''::tsvector))) l) x
  ), mine as (
    select u.lexeme, case when 'A' = any(u.weights) then 2.0 else 1.0 end as t
      from unnest(coalesce(p_a, ''::tsvector)) u
  ), mine_total as (
    select sum(w.w * m.t * m.t) as total from mine m join weight w using (lexeme)
  ), theirs as (
    select o.n, sum(w.w * u.t * u.t) as total, sum(w.w * u.t * m.t) filter (where m.lexeme is not null) as shared
      from unnest(p_others) with ordinality as o(v, n)
      cross join lateral (select x.lexeme, case when 'A' = any(x.weights) then 2.0 else 1.0 end as t
                            from unnest(coalesce(o.v, ''::tsvector)) x) u
      join weight w on w.lexeme = u.lexeme
      left join mine m on m.lexeme = u.lexeme
     group by o.n
  )
  select o.n, coalesce(t.shared / nullif(sqrt(mt.total * t.total), 0), 0)
    from generate_series(1, cardinality(p_others)) as o(n)
    left join theirs t on t.n = o.n cross join mine_total mt
   order by o.n
$$;

-- SQL again, so its plan is cached again before PostgreSQL 18 (20261202001602).
select public.cache_plans('public.lexeme_overlaps_weighted(tsvector, tsvector[], jsonb)'::regprocedure)
 where current_setting('server_version_num')::integer < 180000;

create or replace function public.match_feedback_hybrid(p_project_id uuid, p_feedback_id uuid, p_model text,
                                                        p_embedding double precision[], p_limit integer default 5,
                                                        p_min_score double precision default 0,
                                                        p_pool integer default 50)
returns table (feedback_id uuid, score real, similarity real, lexical real)
language plpgsql stable security definer set search_path = public, pg_temp as $$
declare
  v_lexemes tsvector;
  v_shares jsonb := public.lexeme_shares();
  v_terms tsquery[];
  v_weights double precision[];
  v_pool uuid[];
begin
  select l.lexemes into v_lexemes
    from public.feedback_lexemes l where l.feedback_id = p_feedback_id and l.project_id = p_project_id;
  if length(coalesce(v_lexemes, ''::tsvector)) > 0 then
    select array_agg(public.lexeme_tsquery(t.lexeme)), array_agg(t.weight) into v_terms, v_weights
      from public.lexeme_terms(v_lexemes, v_shares) t;
  end if;
  -- One GIN lookup per query lexeme (each in at most 500 rows, see
  -- lexeme_terms), summed per post: a hash join and aggregate, no per-row
  -- evaluation of every lexeme. Dynamic SQL: a plan made for this call's own
  -- lexemes.
  if cardinality(v_terms) > 0 then
    execute 'select array_agg(x.feedback_id) from (
               select l.feedback_id from unnest($4, $5) as t(q, w)
                 join public.feedback_lexemes l on l.lexemes @@ t.q
                where l.project_id = $1 and l.feedback_id <> $2
                group by l.feedback_id order by sum(t.w) desc, l.feedback_id
                limit $3) x'
      into v_pool using p_project_id, p_feedback_id, p_pool, v_terms, v_weights;
  end if;
  select array_agg(distinct c.id) into v_pool
    from (select unnest(coalesce(v_pool, '{}')) as id
          union all
          select n.feedback_id from public.nearest_feedback(p_project_id, p_model, p_embedding, p_pool,
                                                            p_feedback_id) n) c;
  return query
  select f.id, f.score::real, f.similarity::real, f.lexical::real
    from (
      select o.id, o.similarity, o.lexical,
             least(1, greatest(0, w.w_cos * o.similarity + w.w_lex * o.lexical + w.w_bias)) as score,
             least(case when o.lexical > 0
                        then rank() over (order by o.lexical desc)
                             + (count(*) over (partition by o.lexical) - 1) / 2.0 end,
                   case when o.embedded
                        then rank() over (order by o.embedded desc, o.similarity desc)
                             + (count(*) over (partition by o.embedded, o.similarity) - 1) / 2.0 end,
                   rank() over (order by o.lexical + 0.2 * o.similarity desc)
                     + (count(*) over (partition by o.lexical + 0.2 * o.similarity) - 1) / 2.0)
               as best_rank
        from (select c.id, coalesce(s.similarity, 0) as similarity, s.similarity is not null as embedded,
                     coalesce(x.overlap, 0) as lexical
                from unnest(coalesce(v_pool, '{}')) with ordinality as c(id, n)
                join public.feedback_lexemes l on l.feedback_id = c.id
                left join public.lexeme_overlaps_weighted(
                            v_lexemes, array(select l2.lexemes
                                               from unnest(coalesce(v_pool, '{}')) with ordinality as c2(id, n)
                                               left join public.feedback_lexemes l2 on l2.feedback_id = c2.id
                                              order by c2.n), v_shares) x on x.n = c.n
                left join public.embedding_similarity(p_model, p_embedding, v_pool) s on s.feedback_id = c.id
                     and s.similarity <= 1.0001  -- a zero vector gives NaN
             ) o
        cross join public.hybrid_weights() w
    ) f
   where f.score >= p_min_score
   order by f.best_rank nulls last, f.score desc, f.id
   limit p_limit;
end
$$;

select public.lock_down_project_objects();
-- A pure helper run inside match_feedback_hybrid (security definer), as in
-- 20261202000501: lock_down_project_objects() granted it, as it grants every
-- function this transaction changed.
revoke execute on function public.lexeme_overlaps_weighted(tsvector, tsvector[], jsonb) from service_role;
select public.disable_jit();
