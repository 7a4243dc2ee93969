-- Identifier-aware lexemes for the hybrid duplicate search.
--
-- The 'english' parser keeps technical tokens whole: "java.lang.NullPointerException",
-- "org.acme.CsvWriter.flush", "/usr/lib/foo/config.yaml" are one lexeme each,
-- and "getInstance" stems to "getinst". Two reports of the same crash, one
-- quoting the stack frame and one naming the exception, then share no lexeme,
-- and the lexical side of match_feedback_hybrid misses them. So every text's
-- tsvector also gets the parts of its identifiers: split at punctuation
-- ("java", "lang", "nullpointerexcept") and at camelCase humps ("null",
-- "pointer", "except"), parts of 3+ characters that are not plain numbers.
-- The whole tokens stay, so an exact "v2.3.1" or path still matches as before.
--
-- For prose the parts are the words already there, so ordinary feedback's
-- lexemes are unchanged. Common parts ("com",
-- "java" in a Java tracker) are left out of the query by lexeme_query's
-- planner statistics, as any common word is.

create function public.identifier_parts(p_text text) returns tsvector
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select coalesce(array_to_tsvector(array_agg(distinct v.lexeme)), ''::tsvector)
    from (select regexp_replace(coalesce(p_text, ''), '[^[:alnum:]]+', ' ', 'g') as segments) s
    cross join lateral unnest(to_tsvector('english'::regconfig,
      s.segments || ' ' || regexp_replace(regexp_replace(s.segments, '([[:lower:][:digit:]])([[:upper:]])', '\1 \2', 'g'),
                                          '([[:upper:]]+)([[:upper:]][[:lower:]])', '\1 \2', 'g'))) v
   where length(v.lexeme) >= 3 and v.lexeme !~ '^[0-9]+$'
$$;

-- Same signature as before (20261201000800), so its grants and the trigger
-- that calls it stay; only the parts are added.
create or replace function public.feedback_tsvector(p_title text, p_body text) returns tsvector
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select setweight(to_tsvector('english'::regconfig, left(coalesce(p_title, ''), 500)), 'A')
      || setweight(to_tsvector('english'::regconfig, left(coalesce(p_body, ''), 20000)), 'B')
      || public.identifier_parts(left(coalesce(p_title, ''), 500) || ' ' || left(coalesce(p_body, ''), 20000))
$$;

-- Existing posts get the parts too (one pass; minutes at 100,000 long posts).
update public.feedback_lexemes l
   set lexemes = v.lexemes, terms = length(v.lexemes)
  from public.posts p
  cross join lateral (select public.feedback_tsvector(p.title, p.body) as lexemes) v
 where p.id = l.feedback_id;


-- Rare lexemes weigh more. A plain overlap counts "happens", "expected" or a
-- framework frame shared by every report as much as the one class name two
-- duplicates share; a weighted one is the cosine of binary TF-IDF vectors:
--
--   sum over shared lexemes of w / sqrt(sum of w over mine * sum over theirs),
--   w = ln(1 / share)^2
--
-- where share is the fraction of rows holding the lexeme, from the planner's
-- statistics of feedback_lexemes (as lexeme_query reads them). A lexeme not
-- among the common ones is rarer than all of them: half the smallest listed
-- share (key '' of the map). Without statistics every lexeme weighs the same
-- and this is the plain overlap.
create function public.lexeme_shares() returns jsonb
language sql stable security definer set search_path = public, pg_temp as $$
  select coalesce(jsonb_object_agg(u.elem, u.share), '{}'::jsonb)
         || jsonb_build_object('', coalesce(min(u.share) / 2, 0.5))
    from pg_catalog.pg_stats s
    cross join lateral unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) as u(elem, share)
   where s.schemaname = 'public' and s.tablename = 'feedback_lexemes' and s.attname = 'lexemes'
     and u.elem is not null
$$;

-- The weighted overlap of p_a with each of p_others, in their order.
create function public.lexeme_overlaps_weighted(p_a tsvector, p_others tsvector[], p_shares jsonb)
returns table (n bigint, overlap double precision)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  with common as (
    select e.key as lexeme, e.value::text::double precision as share from jsonb_each(p_shares) e where e.key <> ''
  ), unlisted as (
    select coalesce((p_shares ->> '')::double precision, 0.5) as share
  ), weight as (
    select x.lexeme, ln(1 / least(0.999, greatest(1e-9, coalesce(c.share, u.share)))) ^ 2 as w
      from (select distinct l as lexeme from unnest(tsvector_to_array(coalesce(p_a, ''::tsvector))) l
            union
            select l from unnest(p_others) o, unnest(tsvector_to_array(coalesce(o, ''::tsvector))) l) x
      left join common c on c.lexeme = x.lexeme cross join unlisted u
  ), mine as (
    select l as lexeme from unnest(tsvector_to_array(coalesce(p_a, ''::tsvector))) l
  ), mine_total as (
    select sum(w.w) as total from mine join weight w using (lexeme)
  ), theirs as (
    select o.n, sum(w.w) as total, sum(w.w) filter (where m.lexeme is not null) as shared
      from unnest(p_others) with ordinality as o(v, n)
      cross join lateral unnest(tsvector_to_array(coalesce(o.v, ''::tsvector))) l
      join weight w on w.lexeme = l
      left join mine m on m.lexeme = l
     group by o.n
  )
  select o.n, coalesce(t.shared / nullif(sqrt(mt.total * t.total), 0), 0)
    from generate_series(1, cardinality(p_others)) as o(n)
    left join theirs t on t.n = o.n cross join mine_total mt
   order by o.n
$$;

-- Set-based (hash joins over tsvector_to_array), not a lexeme-by-lexeme loop:
-- a pair of 1,000-lexeme reports takes a few milliseconds.
create function public.lexeme_overlap_weighted(p_a tsvector, p_b tsvector, p_shares jsonb)
returns double precision
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select o.overlap from public.lexeme_overlaps_weighted(p_a, array[p_b], p_shares) o
$$;

-- Refit on STS-B train with the weighted overlap (signalsloop.benchmarks.duplicates),
-- still on the cosine-only fit's scale, so duplicate_threshold keeps its meaning.
create or replace function public.hybrid_weights()
returns table (w_cos double precision, w_lex double precision, w_bias double precision)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select 0.6860::double precision, 0.3076::double precision, 0.0457::double precision
$$;

-- As in 20261201000800, scoring with the weighted overlap (``lexical`` is that overlap).
create or replace function public.match_feedback_hybrid(p_project_id uuid, p_feedback_id uuid, p_model text,
                                                        p_embedding double precision[], p_limit integer default 5,
                                                        p_min_score double precision default 0,
                                                        p_pool integer default 50)
returns table (feedback_id uuid, score real, similarity real, lexical real)
language plpgsql stable security definer set search_path = public, pg_temp as $$
declare
  v_lexemes tsvector;
  v_query tsquery;
  v_pool uuid[];
  v_shares jsonb;
begin
  select l.lexemes into v_lexemes
    from public.feedback_lexemes l where l.feedback_id = p_feedback_id and l.project_id = p_project_id;
  if length(coalesce(v_lexemes, ''::tsvector)) > 0 then
    v_query := public.lexeme_query(v_lexemes);
  end if;
  if numnode(coalesce(v_query, ''::tsquery)) = 0 then
    v_query := null;
  end if;
  if v_query is not null then
    execute 'select array_agg(x.feedback_id) from (
               select l.feedback_id from public.feedback_lexemes l
                where l.project_id = $1 and l.lexemes @@ $2 and l.feedback_id <> $3
                order by ts_rank(l.lexemes, $2, 1) desc, l.feedback_id limit $4) x'
      into v_pool using p_project_id, v_query, p_feedback_id, p_pool;
  end if;
  select array_agg(distinct c.id) into v_pool
    from (select unnest(coalesce(v_pool, '{}')) as id
          union all
          select n.feedback_id from public.nearest_feedback(p_project_id, p_model, p_embedding, p_pool,
                                                            p_feedback_id) n) c;
  v_shares := public.lexeme_shares();
  return query
  select f.id, f.score::real, f.similarity::real, f.lexical::real
    from (
      select o.id, o.similarity, o.lexical,
             least(1, greatest(0, w.w_cos * o.similarity + w.w_lex * o.lexical + w.w_bias)) as score
        from (select c.id, coalesce(s.similarity, 0) as similarity, coalesce(x.overlap, 0) as lexical
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
   order by f.score desc, f.id
   limit p_limit;
end
$$;

-- Pure helpers like feedback_tsvector: called inside the security-definer
-- trigger and match_feedback_hybrid, so no API role needs them.
revoke execute on function public.identifier_parts(text), public.lexeme_shares(),
  public.lexeme_overlap_weighted(tsvector, tsvector, jsonb),
  public.lexeme_overlaps_weighted(tsvector, tsvector[], jsonb) from public, anon, authenticated, service_role;
