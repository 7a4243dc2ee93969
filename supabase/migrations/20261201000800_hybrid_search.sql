-- Hybrid duplicate search: lexical (PostgreSQL full-text search) and semantic
-- (the stored embeddings) candidates, fused into one calibrated score.
--
-- Word overlap finds what a mean-of-tokens embedding blurs: long technical
-- reports (stack traces, class names, versions) that share rare tokens. The
-- embeddings find paraphrases with few words in common. Both candidate lists
-- are merged and every candidate gets
--
--   score = least(1, greatest(0, w_cos * cosine + w_lex * overlap + w_bias))
--
-- with overlap = |shared lexemes| / sqrt(|mine| * |theirs|). The weights come
-- from a logistic fit (signalsloop.benchmarks.duplicates) expressed on
-- the cosine's scale: a pair scoring t has the probability of being a
-- duplicate that a pair of cosine t had under the embedding-only fit, so a
-- project's `duplicate_threshold` keeps its meaning. Runs on plain PostgreSQL
-- 15-18 (no extension needed) and on Supabase; pgvector is used where present
-- through match_feedback's own storage (vector or real[]).

create table public.feedback_lexemes (
  feedback_id uuid primary key references public.posts (id) on delete cascade,
  project_id uuid not null references public.projects (id) on delete cascade,
  lexemes tsvector not null,
  terms integer not null
);
create index feedback_lexemes_search_idx on public.feedback_lexemes using gin (lexemes);
create index feedback_lexemes_project_idx on public.feedback_lexemes (project_id);
alter table public.feedback_lexemes enable row level security;
revoke all on public.feedback_lexemes from public, anon, authenticated;
grant select on public.feedback_lexemes to service_role;

-- Title words weigh A, body words B. 'english' drops stop words and stems;
-- tokens like "NullPointerException", "v2.3.1" or "/api/export" stay whole.
create function public.feedback_tsvector(p_title text, p_body text) returns tsvector
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select setweight(to_tsvector('english'::regconfig, left(coalesce(p_title, ''), 500)), 'A')
      || setweight(to_tsvector('english'::regconfig, left(coalesce(p_body, ''), 20000)), 'B')
$$;

create function public.posts_index_lexemes() returns trigger
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_lexemes tsvector := public.feedback_tsvector(new.title, new.body);
begin
  insert into public.feedback_lexemes (feedback_id, project_id, lexemes, terms)
  values (new.id, new.project_id, v_lexemes, length(v_lexemes))
  on conflict (feedback_id) do update
    set project_id = excluded.project_id, lexemes = excluded.lexemes, terms = excluded.terms;
  return null;
end
$$;
create trigger posts_index_lexemes after insert or update of title, body, project_id on public.posts
  for each row execute function public.posts_index_lexemes();

insert into public.feedback_lexemes (feedback_id, project_id, lexemes, terms)
select p.id, p.project_id, v.l, length(v.l)
  from public.posts p cross join lateral (select public.feedback_tsvector(p.title, p.body) as l) v
on conflict (feedback_id) do nothing;


-- An OR query of a text's rarest lexemes. Rarity comes from the planner's
-- statistics of feedback_lexemes (ANALYZE / autovacuum keep the most common
-- lexemes and the share of rows holding each): a lexeme estimated in more
-- than p_max_rows rows ("app", "crash" in a big tracker) is left out, then
-- the rarest p_max_terms are kept, title words first on ties. Without
-- statistics yet every lexeme counts. This keeps one lookup an index scan
-- over a few hundred matches at 100,000 items.
create function public.lexeme_query(p_lexemes tsvector, p_max_terms integer default 32,
                                    p_max_rows double precision default 500) returns tsquery
language sql stable security definer set search_path = public, pg_temp as $$
  with common as (
    select u.elem, u.share * greatest(c.reltuples, 0) as rows
      from pg_catalog.pg_stats s
      join pg_catalog.pg_class c on c.oid = 'public.feedback_lexemes'::regclass
      cross join lateral unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) as u(elem, share)
     where s.schemaname = 'public' and s.tablename = 'feedback_lexemes' and s.attname = 'lexemes'
       and u.elem is not null
  )
  select coalesce(string_agg('''' || replace(replace(t.lexeme, '\', '\\'), '''', '''''') || '''', ' | '),
                  '')::tsquery
    from (select x.lexeme
            from unnest(p_lexemes) x left join common c on c.elem = x.lexeme
           where coalesce(c.rows, 0) <= p_max_rows
           order by coalesce(c.rows, 0), 'A' = any(x.weights) desc, length(x.lexeme) desc, x.lexeme
           limit p_max_terms) t
$$;

-- Lexeme overlap of two texts, |A n B| / sqrt(|A| |B|): a || b merges equal
-- lexemes, so |A u B| = length(a || b), all in C.
create function public.lexeme_overlap(p_a tsvector, p_b tsvector) returns double precision
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select case when length(p_a) > 0 and length(p_b) > 0
              then (length(p_a) + length(p_b) - length(p_a || p_b))::double precision
                   / sqrt(length(p_a)::double precision * length(p_b))
              else 0 end
$$;

-- Semantic candidates (nearest_feedback) and the cosine of given posts
-- (embedding_similarity), over the storage match_feedback uses. With
-- pgvector: an HNSW index on the 256-d vectors (the offline model and the
-- default OpenAI size), searched with pgvector 0.8's iterative scan so the
-- project filter still fills p_limit rows; other sizes, and plain
-- PostgreSQL's real[], scan the project's rows exactly (match_feedback).
do $outer$
declare
  v_schema text := (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                     where e.extname = 'vector');
  v_pgvector boolean := v_schema is not null
    and (select format_type(atttypid, atttypmod) from pg_attribute
          where attrelid = 'public.feedback_embeddings'::regclass and attname = 'embedding') <> 'real[]';
  v_similarity text;
begin
  if v_pgvector then
    v_similarity := format('(1 - (e.embedding operator(%I.<=>) p_embedding::%I.vector))::real', v_schema, v_schema);
    execute format('create index feedback_embeddings_hnsw_256_idx on public.feedback_embeddings
                      using hnsw ((embedding::%1$I.vector(256)) %1$I.vector_cosine_ops) where dims = 256', v_schema);
    execute format($f$
      create function public.nearest_feedback(p_project_id uuid, p_model text, p_embedding double precision[],
                                              p_limit integer, p_exclude uuid)
      returns table (feedback_id uuid)
      language plpgsql stable security definer set search_path = public, pg_temp
      set hnsw.iterative_scan = 'relaxed_order' set hnsw.ef_search = 100 as $body$
      begin
        if cardinality(p_embedding) <> 256 then
          return query select m.feedback_id
                         from public.match_feedback(p_project_id, p_model, p_embedding, p_limit, -1, p_exclude) m;
          return;
        end if;
        return query
          select e.feedback_id
            from public.feedback_embeddings e
           where e.dims = 256 and e.project_id = p_project_id and e.model = p_model
             and e.feedback_id is distinct from p_exclude
           order by e.embedding::%1$I.vector(256) operator(%1$I.<=>) p_embedding::%1$I.vector(256)
           limit p_limit;
      end
      $body$$f$, v_schema);
  else
    v_similarity := '(select sum(a * b) from unnest(e.embedding, p_embedding) as t(a, b))::real';
    create function public.nearest_feedback(p_project_id uuid, p_model text, p_embedding double precision[],
                                            p_limit integer, p_exclude uuid)
    returns table (feedback_id uuid)
    language sql stable security definer set search_path = public, pg_temp as $body$
      select m.feedback_id from public.match_feedback(p_project_id, p_model, p_embedding, p_limit, -1, p_exclude) m
    $body$;
  end if;
  execute format($f$
    create function public.embedding_similarity(p_model text, p_embedding double precision[], p_ids uuid[])
    returns table (feedback_id uuid, similarity real)
    language sql stable security definer set search_path = public, pg_temp as $body$
      select e.feedback_id, %s
        from public.feedback_embeddings e
       where e.feedback_id = any(p_ids) and e.model = p_model and e.dims = cardinality(p_embedding)
    $body$$f$, v_similarity);
end
$outer$;

-- The calibrated weights, in one place (see the header).
create function public.hybrid_weights()
returns table (w_cos double precision, w_lex double precision, w_bias double precision)
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select 0.6903::double precision, 0.3466::double precision, 0.0099::double precision
$$;

-- Near-duplicates of one stored post: its lexemes come from feedback_lexemes,
-- its embedding from the caller (the duplicate agent writes it after deciding).
-- p_pool candidates are taken from each list, then every candidate is scored;
-- a zero or mismatched embedding leaves the lexical side (cosine counted 0).
create function public.match_feedback_hybrid(p_project_id uuid, p_feedback_id uuid, p_model text,
                                             p_embedding double precision[], p_limit integer default 5,
                                             p_min_score double precision default 0, p_pool integer default 50)
returns table (feedback_id uuid, score real, similarity real, lexical real)
language plpgsql stable security definer set search_path = public, pg_temp as $$
declare
  v_lexemes tsvector;
  v_query tsquery;
  v_pool uuid[];
begin
  select l.lexemes into v_lexemes
    from public.feedback_lexemes l where l.feedback_id = p_feedback_id and l.project_id = p_project_id;
  if length(coalesce(v_lexemes, ''::tsvector)) > 0 then
    v_query := public.lexeme_query(v_lexemes);
  end if;
  if numnode(coalesce(v_query, ''::tsquery)) = 0 then
    v_query := null;
  end if;
  -- Dynamic SQL: a plan made for this query's own lexemes (a generic plan for
  -- "lexemes @@ $1" would scan and rank every row).
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
  return query
  select f.id, f.score::real, f.similarity::real, f.lexical::real
    from (
      select c.id, coalesce(s.similarity, 0) as similarity, public.lexeme_overlap(v_lexemes, l.lexemes) as lexical,
             least(1, greatest(0, w.w_cos * coalesce(s.similarity, 0)
                                  + w.w_lex * public.lexeme_overlap(v_lexemes, l.lexemes) + w.w_bias)) as score
        from unnest(coalesce(v_pool, '{}')) as c(id)
        join public.feedback_lexemes l on l.feedback_id = c.id
        left join public.embedding_similarity(p_model, p_embedding, v_pool) s on s.feedback_id = c.id
             and s.similarity <= 1.0001  -- a zero vector gives NaN
        cross join public.hybrid_weights() w
    ) f
   where f.score >= p_min_score
   order by f.score desc, f.id
   limit p_limit;
end
$$;

revoke execute on function public.feedback_tsvector(text, text), public.posts_index_lexemes(),
  public.lexeme_query(tsvector, integer, double precision), public.lexeme_overlap(tsvector, tsvector),
  public.nearest_feedback(uuid, text, double precision[], integer, uuid),
  public.embedding_similarity(text, double precision[], uuid[]), public.hybrid_weights(),
  public.match_feedback_hybrid(uuid, uuid, text, double precision[], integer, double precision, integer)
  from public, anon, authenticated;
grant execute on function public.feedback_tsvector(text, text), public.posts_index_lexemes(),
  public.lexeme_query(tsvector, integer, double precision), public.lexeme_overlap(tsvector, tsvector),
  public.nearest_feedback(uuid, text, double precision[], integer, uuid),
  public.embedding_similarity(text, double precision[], uuid[]), public.hybrid_weights(),
  public.match_feedback_hybrid(uuid, uuid, text, double precision[], integer, double precision, integer)
  to service_role;
