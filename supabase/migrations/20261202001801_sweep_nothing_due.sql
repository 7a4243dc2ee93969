-- A sweep that finds nothing due returns at once (issue: data lifecycle,
-- the sweep on top of a long history).
--
-- Measured with `signalsloop bench --history 1000000` once its empty
-- baseline was fair (analyzed after the warm-up): the sweep's p50 was 1.40-1.56
-- times the empty database's in four runs on an idle machine (0.35 against
-- 0.23 ms), with the same plan and 2-8 buffers for its one real query.
-- track_functions put the time inside sweep_deliveries: 0.157 ms a call on
-- the history, 0.141 ms empty, and 0.070 / 0.063 ms with
-- plan_cache_mode = force_generic_plan. With nothing due, v_ids is null and
-- the locking query's `d.id = any (null)` makes its custom plan (a constant
-- false) look far cheaper than the generic one, so PL/pgSQL's plan cache
-- never settles on the generic plan and plans the query again on every call,
-- and the planner costs the history's 2.5 million deliveries (statistics,
-- index sizes) where the empty database has a few hundred.
--
-- Nothing due is the sweep's usual answer (run_periodic every few seconds),
-- so it now returns 0 before that query, as ring_doorbell() would have for
-- an empty list. With work to do it plans as before.
create or replace function public.sweep_deliveries(p_limit integer default 500) returns integer
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ids bigint[];
begin
  select array_agg(s.id order by s.ring_after) into v_ids
    from (select d.id, d.ring_after,
                 row_number() over (partition by d.agent, d.project_id order by d.ring_after, d.id) as rn,
                 case when a.serialize_by_project then 1 else c.sweep_per_project end as cap
            from public.event_deliveries d
            join public.agents a on a.name = d.agent and a.mode <> 'off'
           cross join public.backbone_config c
           where d.status in ('pending', 'running', 'failed', 'parked') and d.ring_after <= now()) s
   where s.rn <= s.cap;
  if v_ids is null then
    return 0;  -- nothing due: no locking query to (re-)plan
  end if;
  return public.ring_doorbell(array(
    select d.id from public.event_deliveries d
     where d.id = any (v_ids[1:p_limit])
     order by d.ring_after
       for update of d skip locked));
end
$$;

select public.disable_jit();
