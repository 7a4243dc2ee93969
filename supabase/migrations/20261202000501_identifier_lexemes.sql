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
-- For prose the parts are the words already there, so the overlap of
-- ordinary feedback, and with it the calibration of hybrid_weights(), is
-- unchanged (re-measured on STS-B: see docs/ai.md). Common parts ("com",
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

update public.feedback_lexemes l
   set lexemes = v.lexemes, terms = length(v.lexemes)
  from public.posts p
  cross join lateral (select public.feedback_tsvector(p.title, p.body) as lexemes) v
 where p.id = l.feedback_id;

-- A pure helper like feedback_tsvector: called inside the security-definer
-- trigger and match_feedback_hybrid, so no API role needs it.
revoke execute on function public.identifier_parts(text) from public, anon, authenticated, service_role;
