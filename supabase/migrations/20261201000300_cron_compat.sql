-- The sweep's schedule on the pg_cron users have. pg_cron 1.5+ (Supabase)
-- runs second schedules ('5 seconds'); 1.4 (Debian's postgresql-15-cron)
-- rejects them and runs at most once a minute. There the job runs every minute
-- and sweeps every few seconds within it.

-- Called by pg_cron as `call public.run_periodic_for(50, 5)`: run_periodic()
-- every p_every seconds for p_seconds, committing after each round, so each
-- round's doorbells leave (pg_net sends and NOTIFY delivers only at commit)
-- and no lock is held across the sleeps. A procedure, not a function, for the
-- commits; hence no SECURITY DEFINER and no SET clause (either forbids
-- transaction control) and fully qualified names. Keep p_seconds under the
-- minute: pg_cron starts no second run of a job while one still runs.
create procedure public.run_periodic_for(p_seconds double precision default 50, p_every double precision default 5)
language plpgsql as $$
declare
  v_until timestamptz := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => least(p_seconds, 58));
begin
  if p_every is null or p_every <= 0 then
    raise exception using errcode = '22023', message = 'run_periodic_for: p_every must be > 0 seconds';
  end if;
  loop
    perform public.run_periodic();
    commit;
    exit when pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_every) > v_until;
    perform pg_catalog.pg_sleep(p_every);
  end loop;
end
$$;
revoke execute on procedure public.run_periodic_for(double precision, double precision)
  from public, anon, authenticated;
grant execute on procedure public.run_periodic_for(double precision, double precision) to service_role;

-- (Re)schedule the sweep job 'signalsloop-sweep' for the pg_cron at hand and
-- return its schedule (null without pg_cron). Run it again after installing
-- pg_cron: `select public.schedule_sweep();`. Whether second schedules work is
-- asked of pg_cron itself (it raises 22023 "invalid schedule" before 1.5), so
-- a backport or a build that knows them gets them.
create function public.schedule_sweep(p_every_seconds integer default 5) returns text
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_version text := (select extversion from pg_extension where extname = 'pg_cron');
begin
  if p_every_seconds is null or p_every_seconds not between 1 and 59 then
    raise exception using errcode = '22023', message = 'schedule_sweep: p_every_seconds must be 1-59';
  end if;
  if to_regprocedure('cron.schedule(text,text,text)') is null then
    raise notice 'pg_cron is not installed: the relay''s timer sweeps (signalsloop relay)';
    return null;
  end if;
  begin
    perform cron.schedule('signalsloop-sweep', format('%s seconds', p_every_seconds), 'select public.run_periodic()');
    return format('%s seconds', p_every_seconds);
  exception when invalid_parameter_value then
    perform cron.schedule('signalsloop-sweep', '* * * * *',
                          format('call public.run_periodic_for(50, %s)', p_every_seconds));
    raise notice 'pg_cron % has no second schedules (1.5+ has): the sweep job runs every minute and sweeps every % s',
                 coalesce(v_version, '(unknown version)'), p_every_seconds;
    return '* * * * *';
  end;
end
$$;
revoke execute on function public.schedule_sweep(integer) from public, anon, authenticated;
grant execute on function public.schedule_sweep(integer) to service_role;

select public.schedule_sweep();
