-- A quiet drain stays while its pg_net batch is held open anyway (issue:
-- production path on Supabase).
--
-- pg_net sends up to 200 requests at once and waits for all of them to end
-- before it pauses (about 1 s) and sends the next batch. A drain that has run
-- BUSY_RUNS deliveries stays until its budget ends (shared/drain.py), so a
-- batch with one busy agent lasts the whole budget. A quiet request of the
-- same batch (theme's, before sentiment has produced much) used to leave
-- after its 300 ms linger. That gave pg_net nothing (the batch still waits for
-- the busy one) and uncovered its agent: the agent's next deliveries were
-- rung, and their rings waited for the batch to end and the pause after it,
-- about 6 s with a 5 s budget. Measured with the stand-in at 10 posts/s, that
-- wait was theme's and priority's p95 (6.2-8.1 s).
--
-- Now a drain that starts to stay records until when (stays_until), and a
-- quiet drain whose linger is over asks drain_hold(): under a batching
-- doorbell (pg_net), if another drainer stays, it stays too (registered as a
-- drainer, so its agent's new deliveries are not rung) until that one's end
-- or its own budget's, whichever is first. With the NOTIFY doorbell (the
-- relay) nothing batches, and a quiet drain leaves as before.

alter table public.agent_drainers
  add column stays_until timestamptz;  -- set: this drainer stays until then (its batch is held open)

alter table public.backbone_config
  add column batch_starve_ms integer not null default 500 check (batch_starve_ms >= 0);

-- Is the doorbell one that sends batches (pg_net)?
create function public.doorbell_batches() returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  select c.doorbell in ('pg_net', 'both')
         or (c.doorbell = 'auto' and to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is not null)
    from public.backbone_config c
$$;

-- Has an agent with no live drainer (for a per-project agent: none of that
-- project's) had a delivery pending for longer than p_ms? Its ring is then
-- waiting in pg_net's queue for the batch to end. One index probe per agent.
create function public.batch_starves(p_ms integer) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  select exists (
    select 1
      from public.agents a
      cross join lateral (select d.project_id, d.event_created_at from public.event_deliveries d
                           where d.agent = a.name and d.status = 'pending'
                           order by d.id limit 1) o
     where a.enabled and a.mode <> 'off'
       and o.event_created_at < clock_timestamp() - make_interval(secs => p_ms / 1000.0)
       and not exists (select 1 from public.agent_drainers x
                        where x.agent = a.name and x.until > clock_timestamp() and x.delivery_id is null
                          and (not a.serialize_by_project or x.project_id = o.project_id)))
$$;

-- How long a drain waiting for work stays, in ms (0: leave now).
--   p_stays_ms > 0: a drain that stays to its budget's end (that much left);
--     under a batching doorbell it is recorded, so quiet drains stay with it.
--   p_stays_ms = 0: a quiet drain whose linger is over; under a batching
--     doorbell it stays while another drainer stays, and is registered as a
--     drainer for that time (its agent's new deliveries are then not rung).
-- Under a batching doorbell both leave (0) when another agent starves.
create function public.drain_hold(p_drainer uuid, p_agent text, p_project_id uuid, p_stays_ms integer,
                                  p_hold_ms integer)
returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_starve integer;
  v_until timestamptz;
  v_hold timestamptz := clock_timestamp() + make_interval(secs => greatest(p_hold_ms, 0) / 1000.0);
begin
  if not public.doorbell_batches() then
    return greatest(p_stays_ms, 0);
  end if;
  select batch_starve_ms into v_starve from public.backbone_config;
  if v_starve > 0 and public.batch_starves(v_starve) then
    return 0;
  end if;
  if p_stays_ms > 0 then
    insert into public.agent_drainers (drainer, agent, project_id, until, stays_until)
    values (p_drainer, p_agent, p_project_id, v_hold,
            clock_timestamp() + make_interval(secs => p_stays_ms / 1000.0))
    on conflict (drainer) do update set stays_until = excluded.stays_until;
    return p_stays_ms;
  end if;
  select max(x.stays_until) into v_until
    from public.agent_drainers x
   where x.stays_until > clock_timestamp() and x.until > clock_timestamp() and x.delivery_id is null
     and x.drainer <> p_drainer;
  if v_until is null then
    return 0;
  end if;
  insert into public.agent_drainers (drainer, agent, project_id, until)
  values (p_drainer, p_agent, p_project_id, v_hold)
  on conflict (drainer) do nothing;
  return greatest(0, ceil(extract(epoch from v_until - clock_timestamp()) * 1000))::integer;
end
$$;

comment on function public.drain_hold(uuid, text, uuid, integer, integer) is
  'How long a drain waiting for work stays (ms; 0: leave). See 20261202000711_batch_linger.sql.';

select public.lock_down_project_objects(array['drain_hold', 'doorbell_batches', 'batch_starves']);
revoke execute on function public.drain_hold(uuid, text, uuid, integer, integer) from public, anon, authenticated;
grant execute on function public.drain_hold(uuid, text, uuid, integer, integer) to service_role;
-- Steps of drain_hold (which runs as the owner), not an API.
revoke execute on function public.doorbell_batches(), public.batch_starves(integer)
  from public, anon, authenticated, service_role;
