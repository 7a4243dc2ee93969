-- One entry point for everything that runs on the sweep's schedule: the
-- pg_cron job (production) and the relay's timer (local) both call it, so a
-- periodic task added later (clock ticks, pruning, health alerts) is one line
-- here, not a second scheduler. Returns what each task did, for logs.
create function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object('rung', public.sweep_deliveries(p_limit));
end
$$;
revoke execute on function public.run_periodic(integer) from public, anon, authenticated;
grant execute on function public.run_periodic(integer) to service_role;

do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    -- cron.schedule with an existing name replaces that job's command.
    -- Second schedules need pg_cron 1.5+; 1.4 (Debian's postgresql-15-cron) rejects them (22023), so
    -- there the job runs every minute; 20261201000300_cron_compat.sql makes it sweep every few seconds.
    begin
      perform cron.schedule('signalsloop-sweep', '5 seconds', 'select public.run_periodic()');
    exception when invalid_parameter_value then
      perform cron.schedule('signalsloop-sweep', '* * * * *', 'select public.run_periodic()');
    end;
  end if;
end
$$;
