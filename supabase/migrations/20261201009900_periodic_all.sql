-- Everything on the sweep's schedule, in one place (run_periodic() was
-- redefined by several migrations of this release, each adding its task;
-- this is the whole list). Each key is what that task did in this run.
create or replace function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object(
    'ring_errors', public.collect_ring_errors(),
    'rung', public.sweep_deliveries(p_limit),
    'clock_ticks', public.clock_periodic(),
    'notifications_resolved', public.resolve_stale_notifications(),
    'rate_limits_pruned', public.prune_rate_limits(),
    'alerts', public.evaluate_agent_alerts(),
    'pruned', public.prune_retention_due(500));
end
$$;
revoke execute on function public.run_periodic(integer) from public, anon, authenticated;
grant execute on function public.run_periodic(integer) to service_role;
