-- The facts `signalsloop doctor` checks, as one jsonb: extensions, Vault,
-- the sweep's pg_cron job and its runs, pg_net's recent failures, stuck and
-- dead deliveries, agents and their circuits. The same function serves a
-- DATABASE_URL (psycopg) and a Supabase project (supabase-py RPC with the
-- service-role key), so both see exactly the same report. The cron, net and
-- vault schemas may be absent: they are read with dynamic SQL only when there.
-- With p_include_secret the report carries the Vault secret, so the doctor can
-- test that each endpoint accepts it: hence service_role only (which can read
-- everything anyway) and never anon or authenticated.
create function public.doctor_report(
  p_window_minutes integer default 60,
  p_include_secret boolean default false,
  p_stuck_rings integer default 5,
  p_stuck_minutes integer default 5)
returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_since timestamptz := now() - make_interval(mins => p_window_minutes);
  v_net boolean := to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is not null;
  v_cfg public.backbone_config;
  v_vault jsonb := jsonb_build_object('present', to_regclass('vault.decrypted_secrets') is not null);
  v_cron jsonb := jsonb_build_object('present', to_regclass('cron.job') is not null);
  v_responses jsonb := jsonb_build_object('present', to_regclass('net._http_response') is not null);
  v_secret text;
  v_preload text;
  v_count integer;
  v_part jsonb;
begin
  select * into v_cfg from public.backbone_config;
  begin
    -- superuser-only to read unless pg_read_all_settings: then unknown (null)
    v_preload := current_setting('shared_preload_libraries');
  exception when insufficient_privilege then
    v_preload := null;
  end;

  if (v_vault ->> 'present')::boolean then
    execute 'select count(*) from vault.decrypted_secrets where name = $1' into v_count using 'signalsloop_secret';
    v_secret := public.agent_secret();
    v_vault := v_vault || jsonb_build_object('secret_exists', v_count > 0, 'secret_readable', v_secret is not null)
               || case when p_include_secret then jsonb_build_object('secret', v_secret) else '{}'::jsonb end;
  end if;

  if (v_cron ->> 'present')::boolean then
    execute $q$select coalesce(jsonb_agg(jsonb_build_object('jobid', jobid, 'schedule', schedule, 'command', command,
                 'active', active, 'database', database, 'username', username) order by jobid), '[]')
               from cron.job where jobname = 'signalsloop-sweep'$q$ into v_part;
    v_cron := v_cron || jsonb_build_object('jobs', v_part);
    if to_regclass('cron.job_run_details') is not null then
      execute $q$select coalesce(jsonb_agg(r order by r.start_time desc), '[]') from (
                   select d.status, d.return_message, d.start_time, d.end_time
                     from cron.job_run_details d join cron.job j on j.jobid = d.jobid
                    where j.jobname = 'signalsloop-sweep' and d.start_time >= $1
                    order by d.start_time desc limit 20) r$q$ into v_part using v_since;
      v_cron := v_cron || jsonb_build_object('runs', v_part);
    end if;
  end if;

  if (v_responses ->> 'present')::boolean then
    -- pg_net keeps no URL with a response: failures are grouped by kind only.
    execute $q$select coalesce(jsonb_agg(k order by k.count desc), '[]') from (
                 select kind, count(*) as count, max(created) as last_at,
                        (array_agg(coalesce(error_msg, left(content, 200)) order by created desc))[1] as sample
                   from (select created, error_msg, content,
                                case when timed_out or error_msg ~* 'time(d)? ?out' then 'timed_out'
                                     when error_msg ~* 'connect|refused|resolve' then 'refused'
                                     when error_msg is not null then 'error'
                                     when status_code in (401, 404, 413) then status_code::text
                                     when status_code between 400 and 499 then '4xx'
                                     when status_code >= 500 then '5xx' end as kind
                           from net._http_response where created >= $1) f
                  where kind is not null group by kind) k$q$ into v_part using v_since;
    execute 'select count(*) from net._http_response where created >= $1' into v_count using v_since;
    v_responses := v_responses || jsonb_build_object('total', v_count, 'failures', v_part);
  end if;

  return jsonb_build_object(
    'generated_at', now(),
    'window_minutes', p_window_minutes,
    'server_version', current_setting('server_version'),
    'shared_preload_libraries', v_preload,
    'extensions', (
      select jsonb_object_agg(n.name, jsonb_build_object('available', a.default_version is not null,
                                                         'default_version', a.default_version,
                                                         'installed', x.extversion))
        from unnest(array['pg_net', 'pg_cron', 'vector']) n(name)
        left join pg_available_extensions a on a.name = n.name
        left join pg_extension x on x.extname = n.name),
    'doorbell', jsonb_build_object(
      'config', v_cfg.doorbell, 'net_http_post', v_net,
      'effective', case when v_cfg.doorbell = 'auto' then (case when v_net then 'pg_net' else 'notify' end)
                        else v_cfg.doorbell end),
    'vault', v_vault,
    'cron', v_cron,
    'net', v_responses,
    'agents', (
      select coalesce(jsonb_agg(jsonb_build_object(
               'name', a.name, 'enabled', a.enabled, 'mode', a.mode, 'endpoint_url', a.endpoint_url,
               'timeout_ms', a.timeout_ms, 'circuit_state', a.circuit_state,
               'consecutive_failures', a.consecutive_failures, 'circuit_opened_at', a.circuit_opened_at)
             order by a.name), '[]')
        from public.agents a),
    'deliveries', (
      select coalesce(jsonb_agg(s order by s.agent), '[]') from (
        select d.agent,
               count(*) filter (where d.status = 'dead') as dead,
               count(*) filter (where d.status in ('pending', 'failed', 'running')) as stuck,
               max(d.ring_count) as max_ring_count,
               coalesce(sum(d.ring_errors) filter (where d.status in ('pending', 'failed')), 0) as ring_errors,
               min(d.created_at) as oldest_created_at,
               (array_agg(d.last_error order by d.updated_at desc) filter (where d.last_error is not null))[1]
                 as last_error
          from public.event_deliveries d
         where d.status = 'dead'
            or (d.status in ('pending', 'failed', 'running')
                and (d.ring_count >= p_stuck_rings or d.ring_errors > 0
                     or d.ring_after < now() - make_interval(mins => p_stuck_minutes)))
         group by d.agent) s)
  );
end
$$;
revoke execute on function public.doctor_report(integer, boolean, integer, integer) from public, anon, authenticated;
grant execute on function public.doctor_report(integer, boolean, integer, integer) to service_role;
