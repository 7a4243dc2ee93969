-- Local bootstrap for plain PostgreSQL: what Supabase provides before any
-- migration runs, so the same migrations and RLS policies run and are tested
-- everywhere. Applied by `signalsloop db migrate` only when the database has
-- no `auth` schema (i.e. it is not a Supabase database). Idempotent.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

create schema if not exists extensions;
create schema if not exists auth;

grant usage on schema public, extensions, auth to anon, authenticated, service_role;

-- Supabase's auth.users, reduced to what foreign keys need.
create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  created_at timestamptz not null default now()
);

-- As Supabase defines them: the caller's JWT claims, set per request by PostgREST.
create or replace function auth.uid() returns uuid
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- As on Supabase, short statement timeouts for the API roles (they apply to
-- sessions that log in as them, e.g. through PostgREST's authenticator).
do $$
begin
  alter role anon set statement_timeout = '3s';
  alter role authenticated set statement_timeout = '8s';
exception when insufficient_privilege then
  raise notice 'API roles keep their statement timeouts (not allowed to change them)';
end
$$;

-- Supabase's default privileges, as broad as Supabase's: the API roles get
-- everything on new tables, sequences and functions in public and RLS decides.
-- This file only reproduces the platform; the migrations narrow the
-- project's own objects (2026120100040001_least_privilege.sql,
-- public.lock_down_project_objects()) and leave these defaults in place for
-- objects the project did not create, so a team's own tables and functions,
-- and extensions enabled later (whose functions PUBLIC may execute), behave
-- here as they do on Supabase.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
