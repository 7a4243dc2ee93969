-- Periodic clean-ups: notifications a crash left 'sending', and old rate
-- limit windows.

-- A notification is 'sending' from its reservation until the sender records
-- the outcome. A sender that crashed in between never does: its retry finds
-- the row reserved and (rightly) does not send again, so the row would stay
-- 'sending' forever. Once no live lease of a delivery of its event remains
-- and the row is older than the longest agent run, nobody is sending it: it
-- becomes 'unknown' (it may have been posted), which is never sent again.
create function public.resolve_stale_notifications() returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_n integer;
begin
  update public.notifications n
     set status = 'unknown',
         error = 'the sender stopped before recording the outcome (crash or timeout); it may have been '
                 'posted, so it is not sent again'
   where n.status = 'sending'
     and n.created_at < now() - make_interval(secs => (
           select (coalesce(max(a.timeout_ms), 0) + c.lease_grace_ms) / 1000.0
             from public.agents a, public.backbone_config c group by c.lease_grace_ms))
     and not exists (select 1 from public.event_deliveries d
                      where d.event_id = n.event_id and d.status = 'running' and d.lease_until > now());
  get diagnostics v_n = row_count;
  return v_n;
end
$$;

-- Rate limit windows: a day of history, a week where the limit bit.
create function public.prune_rate_limits() returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_n integer;
begin
  delete from public.event_rate_limits
   where window_start < now() - case when suppressed > 0 then interval '7 days' else interval '1 day' end;
  get diagnostics v_n = row_count;
  return v_n;
end
$$;

create or replace function public.run_periodic(p_limit integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
begin
  return jsonb_build_object('ring_errors', public.collect_ring_errors(),
                            'rung', public.sweep_deliveries(p_limit),
                            'notifications_resolved', public.resolve_stale_notifications(),
                            'rate_limits_pruned', public.prune_rate_limits());
end
$$;

select public.lock_down_project_objects();
