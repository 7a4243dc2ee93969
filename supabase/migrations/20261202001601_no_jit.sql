-- No JIT compilation inside the backbone's functions (issue: production path
-- on Supabase).
--
-- PostgreSQL built with LLVM (Debian's and Supabase's are; the embedded one
-- the tests use is not) JIT-compiles any query whose estimated cost passes
-- jit_above_cost (100,000). Estimates on small, young tables are rough: the
-- alert check agent_health_now() (run_periodic) was costed at 227,000 with 6,666
-- deliveries and spent 93 ms of its 141 ms compiling, about 2 s per call under
-- the benchmark's load. Measured on PostgreSQL 15 with the pg_net stand-in
-- (signalsloop bench --doorbell pg_net), the burst drained at 122
-- deliveries/s with JIT on and 146/s with it off; drain_hold() took 6.5 ms a
-- call instead of 3.2 ms. The backbone runs short OLTP statements, which JIT
-- never pays back.
--
-- So every function of the backbone that already has a SET clause (the
-- security definer ones and the project-scoped reads; a SET clause stops a
-- SQL function from being inlined, so those without one keep none) gets
-- jit = off. The setting is per function: the rest of the database keeps the
-- server's. A function re-created later loses it, so migrations end with
-- `select public.disable_jit()`, and tests/supabase/test_no_jit.py checks the
-- catalog.

create function public.disable_jit() returns integer
language plpgsql set search_path = public, pg_temp as $$
declare
  r record;
  v_n integer := 0;
begin
  for r in
    select p.oid::regprocedure as ident
      from pg_proc p
     where p.pronamespace = 'public'::regnamespace
       and p.prokind = 'f'
       and p.proconfig is not null
       and not ('jit=off' = any (p.proconfig))
       and not exists (select 1 from pg_depend e where e.classid = 'pg_proc'::regclass and e.objid = p.oid
                                                 and e.deptype = 'e')
  loop
    execute format('alter function %s set jit = off', r.ident);
    v_n := v_n + 1;
  end loop;
  return v_n;
end
$$;

comment on function public.disable_jit() is
  'Sets jit = off on every backbone function with a SET clause. See 20261202001601_no_jit.sql.';
revoke execute on function public.disable_jit() from public, anon, authenticated, service_role;

select public.disable_jit();
