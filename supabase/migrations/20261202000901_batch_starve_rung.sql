-- Starvation counts only an agent whose ring is waiting (issue: production
-- path on Supabase; refines 20261202000711_batch_linger.sql).
--
-- batch_starves() counted any agent with an old pending delivery and no
-- drainer. An agent whose circuit is open has exactly that for its whole
-- cooldown (claims are refused, so nothing drains it), and so has a delivery
-- pending for any other reason than a queued ring: every batch was then cut
-- after half a second, for every agent and every project, because of one.
-- Now the delivery must have a ring on its way (a ring recorded by the
-- fan-out whose hold has not ended: it sits in pg_net's queue behind the
-- batch), and the agent's circuit must not be open. What is left: an endpoint
-- that rejects every request (401) keeps a ring on its way until each ring's
-- hold ends, so such an agent still cuts batches short until its deliveries
-- are dead-lettered after the bounded rings; `signalsloop doctor` shows it.
create or replace function public.batch_starves(p_ms integer) returns boolean
language sql stable security definer set search_path = public, pg_temp as $$
  select exists (
    select 1
      from public.agents a
      cross join lateral (select d.id, d.project_id, d.event_created_at from public.event_deliveries d
                           where d.agent = a.name and d.status = 'pending'
                           order by d.id limit 1) o
     where a.enabled and a.mode <> 'off' and a.circuit_state <> 'open'
       and o.event_created_at < clock_timestamp() - make_interval(secs => p_ms / 1000.0)
       and exists (select 1 from public.agent_drainers r
                    where r.agent = a.name and r.delivery_id is not null and r.until > clock_timestamp()
                      and (not a.serialize_by_project or r.project_id = o.project_id))
       and not exists (select 1 from public.agent_drainers x
                        where x.agent = a.name and x.until > clock_timestamp() and x.delivery_id is null
                          and (not a.serialize_by_project or x.project_id = o.project_id)))
$$;

select public.lock_down_project_objects(array['batch_starves']);
revoke execute on function public.batch_starves(integer) from public, anon, authenticated, service_role;
