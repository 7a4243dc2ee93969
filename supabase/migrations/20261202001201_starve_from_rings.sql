-- Starvation is found from the rings pg_net still holds, not from every
-- agent's queue (issue: production path on Supabase; refines
-- 20261202000901_batch_starve_rung.sql).
--
-- batch_starves() looked up each agent's oldest pending delivery with
-- `order by d.id limit 1`. No index holds an agent's pending deliveries in id
-- order, and with statistics taken while much was pending (an autovacuum
-- analyze during a burst) the planner walked the primary key from the first
-- delivery ever made, filtering out every finished one, once per agent:
-- 20-36 ms after one benchmark run (3,000 deliveries), growing with the
-- ledger's history. Every waiting drain asks drain_hold() twice a second, so
-- under pg_net this one query took about a fifth of the database's CPU
-- during a burst.
--
-- It also took "a ring on its way" from agent_drainers' ring rows, which
-- only the fan-out records: a ring sent by the sweep or by ring_next (a
-- drain handing on) has none, and a ring row stays after its delivery was
-- run. The ledger knows exactly which rings pg_net has not answered yet:
-- ring_doorbell() stores each request's id in last_request_id, and
-- collect_ring_errors() clears it when pg_net's answer is in (recording the
-- error if the answer was one, such as a 401).
--
-- Now: a delivery starves when its ring has no answer yet, it is still
-- pending, its event is older than p_ms, its agent's circuit is not open and
-- its agent has no drainer (of its project, for a per-project agent). The
-- rings come from event_deliveries_request_idx (only deliveries with a ring
-- waiting for its answer: a few hundred at most), read first whatever the
-- statistics say (a materialized CTE); the cost no longer depends on the
-- history. An endpoint that answers 401 to everything no longer cuts
-- batches short once its answers are collected.
create or replace function public.batch_starves(p_ms integer) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  with waiting as materialized (
    select d.agent, d.project_id, d.status, d.event_created_at
      from public.event_deliveries d
     where d.last_request_id is not null
  )
  select exists (
    select 1
      from waiting w
      join public.agents a on a.name = w.agent
     where w.status = 'pending'
       and w.event_created_at < clock_timestamp() - make_interval(secs => p_ms / 1000.0)
       and a.enabled and a.mode <> 'off' and a.circuit_state <> 'open'
       and not exists (select 1 from public.agent_drainers x
                        where x.agent = a.name and x.until > clock_timestamp() and x.delivery_id is null
                          and (not a.serialize_by_project or x.project_id = w.project_id)))
$$;

select public.lock_down_project_objects(array['batch_starves']);
revoke execute on function public.batch_starves(integer) from public, anon, authenticated, service_role;
