-- Two write policies checked only who wrote the row, not that the writer is
-- still a member of its project, and the competitor catalogue accepted any
-- alias or domain.
--
-- votes_delete_own (20261128000100) was `user_id = auth.uid()`. A member
-- removed from a project could still delete the votes they had cast there:
-- a `delete from votes` without a filter passed (a filter on a column also
-- needs the read policy, which a former member fails), lowered the post's
-- vote_count and published feedback.voted into a project that is no longer
-- theirs. posts_edit_own was `author_id = auth.uid()` for the rows an update
-- may touch; its WITH CHECK refused the change, but with an error that told
-- a former member the post still exists. Both now require membership, as
-- every other member policy does.
alter policy votes_delete_own on public.votes
  using (user_id = auth.uid() and public.is_project_member(public.post_project(post_id)));
alter policy posts_edit_own on public.posts
  using (author_id = auth.uid() and public.is_project_member(project_id));

-- competitors.aliases and .domains bounded their count only: one member
-- could store a 70 MB row, and a NULL alias was read by the competitive agent
-- as the word "None" (every post saying "none" became a mention). Each entry
-- is now a non-blank string of at most 100 (alias) or 253 (domain, the DNS
-- limit) characters. NULL and blank entries already stored carry no name and
-- are dropped; a longer one already stored stays until its row is edited
-- (NOT VALID: existing rows are not rechecked).
create function public.names_within(p_names text[], p_max integer) returns boolean
language sql immutable parallel safe set search_path = pg_catalog, pg_temp as $$
  select coalesce(bool_and(n is not null and length(btrim(n)) between 1 and p_max), true)
    from unnest(p_names) as n
$$;
comment on function public.names_within(text[], integer) is
  'Every entry non-null, non-blank and at most p_max characters (competitors'' aliases and domains).';
-- A CHECK runs with the writer's rights: members add competitors
-- (competitors_create), the service role and operators edit them.
revoke execute on function public.names_within(text[], integer) from public, anon;
grant execute on function public.names_within(text[], integer) to authenticated, service_role;

update public.competitors
   set aliases = array(select a from unnest(aliases) a where a is not null and btrim(a) <> ''),
       domains = array(select d from unnest(domains) d where d is not null and btrim(d) <> '')
 where not public.names_within(aliases, 2147483647) or not public.names_within(domains, 2147483647);

alter table public.competitors
  add constraint competitors_aliases_names check (public.names_within(aliases, 100)) not valid,
  add constraint competitors_domains_names check (public.names_within(domains, 253)) not valid;

-- Functions with a SET clause run without JIT (20261202001601_no_jit.sql).
select public.disable_jit();
