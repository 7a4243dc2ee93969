-- Hybrid duplicate search: the ranking is separated from the calibrated score.
--
-- Two changes to match_feedback_hybrid (20261202000501), the score itself unchanged:
--
-- 1. Lexical candidates are ranked by the rarity weights of the query lexemes
--    they hold, not by ts_rank. ts_rank counts every matched lexeme alike (no
--    rarity), so among long reports that share a template, framework frames and
--    steps, the one sharing the rare class name and version was often outside
--    the 50 kept: on the synthetic technical set (signalsloop.benchmarks.
--    technical_duplicates) the duplicate was in the candidate pool for 57% of
--    the queries; ranked by weight, for all of them. The weight is the one the
--    weighted overlap uses, w = ln(1 / share)^2.
--
-- 2. Candidates are ordered by their better rank in two rankings of the pool,
--    by cosine and by weighted overlap (a candidate ranks in a list only when
--    it has that signal: an embedding, a lexeme in common; candidates a list
--    cannot tell apart share their average rank, so sixty posts at the same
--    cosine do not all count as that list's first), ties broken by the
--    calibrated score, then the id. In other words the two lists are merged
--    in turns, each list's n-th against the other's n-th by score. The
--    calibrated blend stays the reported score and p_min_score still filters
--    on it, so duplicate_threshold keeps its meaning; only the order changes.
--    A candidate that one signal puts first is in the top two even when the
--    other signal is useless for that corpus: long reports that an averaged
--    embedding cannot tell apart (they share a template), paraphrases without
--    a shared word. Reciprocal rank fusion (sum of 1 / (k + rank)) was
--    measured beside it: with the usual k = 60 it ranks by the average rank,
--    and a candidate in the middle of both lists beats one that a single list
--    puts first (recall@5 0.25 on the synthetic technical set, against 1.00);
--    with k = 1 it matched on recall@5 but put a weak lexical match that the
--    embedding likes above the strong lexical match.

-- The query lexemes of a text and their weights: the rule of lexeme_query
-- (at most p_max_terms, none estimated in more than p_max_rows rows, rarest
-- first, title words first on ties), with shares from lexeme_shares().
create function public.lexeme_terms(p_lexemes tsvector, p_shares jsonb, p_max_terms integer default 32,
                                    p_max_rows double precision default 500)
returns table (lexeme text, weight double precision)
language sql stable security definer set search_path = public, pg_temp as $$
  with common as (
    select e.key as elem, e.value::text::double precision as share from jsonb_each(p_shares) e where e.key <> ''
  ), size as (
    select greatest(c.reltuples, 0)::double precision as reltuples
      from pg_catalog.pg_class c where c.oid = 'public.feedback_lexemes'::regclass
  )
  select x.lexeme,
         ln(1 / least(0.999, greatest(1e-9, coalesce(c.share, (p_shares ->> '')::double precision, 0.5)))) ^ 2
    from unnest(p_lexemes) x left join common c on c.elem = x.lexeme cross join size s
   where coalesce(c.share * s.reltuples, 0) <= p_max_rows
   order by coalesce(c.share * s.reltuples, 0), 'A' = any(x.weights) desc, length(x.lexeme) desc, x.lexeme
   limit p_max_terms
$$;

-- One lexeme as a tsquery, quoted so any lexeme text is taken literally.
create function public.lexeme_tsquery(p_lexeme text) returns tsquery
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select ('''' || replace(replace(p_lexeme, '\', '\\'), '''', '''''') || '''')::tsquery
$$;

-- Same signature and result as before, now built from lexeme_terms (one rule).
create or replace function public.lexeme_query(p_lexemes tsvector, p_max_terms integer default 32,
                                               p_max_rows double precision default 500) returns tsquery
language sql stable security definer set search_path = public, pg_temp as $$
  select coalesce(string_agg(public.lexeme_tsquery(t.lexeme)::text, ' | '), '')::tsquery
    from public.lexeme_terms(p_lexemes, public.lexeme_shares(), p_max_terms, p_max_rows) t
$$;

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
                             + (count(*) over (partition by o.embedded, o.similarity) - 1) / 2.0 end)
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
-- Inner steps of match_feedback_hybrid (security definer): no API role needs them.
revoke execute on function public.lexeme_terms(tsvector, jsonb, integer, double precision),
  public.lexeme_tsquery(text), public.lexeme_query(tsvector, integer, double precision)
  from public, anon, authenticated, service_role;
