-- Data lifecycle (issue 10): retention as data, pruning in small batches on
-- the sweep's schedule, and the indexes that keep the hot path on recent rows.
--
-- Rules (a null period means "keep forever"):
--   * succeeded deliveries (and their attempts): retain_succeeded after they finished;
--   * dead (and loop-protection 'blocked') deliveries: retain_dead after they
--     finished, unless replayed first (a replay makes them pending again);
--   * notifications: after retain_notifications the text and Slack response are
--     dropped but the row (dedupe key, status) stays, so a replay never sends a
--     message twice; the row itself goes after retain_events, with the event log;
--     only finished ones are compacted (never one that may still be sent or digested);
--   * shadow results: retain_shadow_results (when that table exists);
--   * clock.tick events: retain_ticks; every other event: retain_events.
--     An event is deleted only when none of its deliveries is still needed:
--     every one is succeeded, or dead/blocked past retain_dead. A pending,
--     running, failed or parked delivery, or a dead letter within its
--     retention, keeps its event.
-- Pruning locks only rows nobody else holds (for update skip locked), waits
-- for no lock longer than lock_timeout, stops after prune_budget_ms and
-- records every run in prune_runs.

alter table public.backbone_config
  add column retain_succeeded interval default '30 days',
  add column retain_dead interval default '90 days',
  add column retain_notifications interval default '30 days',
  add column retain_events interval default '365 days',
  add column retain_shadow_results interval default '30 days',
  add column retain_ticks interval default '7 days',
  -- How often run_periodic really prunes (it is called every few seconds).
  add column prune_every interval default '1 minute',
  -- Batches per kind per run, and the time one run may take in all.
  add column prune_batches integer not null default 4 check (prune_batches >= 1),
  add column prune_budget_ms integer not null default 2000 check (prune_budget_ms >= 0),
  add constraint backbone_config_retention_positive check (
    coalesce(retain_succeeded, '1 s') > '0 s' and coalesce(retain_dead, '1 s') > '0 s'
    and coalesce(retain_notifications, '1 s') > '0 s' and coalesce(retain_events, '1 s') > '0 s'
    and coalesce(retain_shadow_results, '1 s') > '0 s' and coalesce(retain_ticks, '1 s') > '0 s'
    and coalesce(prune_every, '1 s') > '0 s');

-- Finished deliveries in the order they expire: pruning reads O(batch) rows.
create index event_deliveries_finished_idx on public.event_deliveries (finished_at)
  where status in ('succeeded', 'dead', 'blocked');
create index events_tick_created_idx on public.events (created_at) where type = 'clock.tick';
create index notifications_compact_idx on public.notifications (created_at) where text <> '';
create index notifications_created_idx on public.notifications (created_at);

-- shadow_results (the cutover's table) references events and deliveries:
-- deleting those looks its rows up by event_id and delivery_id, and pruning
-- reads it by age. Without these each deleted row would scan the table.
do $$
begin
  if to_regclass('public.shadow_results') is not null then
    create index if not exists shadow_results_event_idx on public.shadow_results (event_id);
    create index if not exists shadow_results_delivery_idx on public.shadow_results (delivery_id)
      where delivery_id is not null;
    create index if not exists shadow_results_created_idx on public.shadow_results (created_at);
  end if;
end
$$;

create table public.prune_runs (
  id bigint generated always as identity primary key,
  started_at timestamptz not null default clock_timestamp(),
  duration_ms double precision not null,
  removed jsonb not null,
  errors jsonb
);
create index prune_runs_started_idx on public.prune_runs (started_at desc);
alter table public.prune_runs enable row level security;
revoke all on public.prune_runs from anon, authenticated;

-- One batch of one kind; returns the rows it removed (or compacted), and adds
-- cascaded counts to p_extra.
create function public.prune_batch(p_kind text, p_batch integer, c public.backbone_config,
                                   inout p_extra jsonb, out p_count integer)
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_ids bigint[];
  v_events uuid[];
  v_attempts integer;
  v_cascaded integer;
  v_col text;
begin
  p_count := 0;
  if p_kind in ('succeeded_deliveries', 'dead_deliveries') then
    -- Plain predicates per kind (no CASE), so every plan can use the partial index.
    if p_kind = 'succeeded_deliveries' then
      v_ids := array(
        select d.id from public.event_deliveries d
         where d.status = 'succeeded' and d.finished_at < now() - c.retain_succeeded
         order by d.finished_at limit p_batch
           for update skip locked);
    else
      v_ids := array(
        select d.id from public.event_deliveries d
         where d.status in ('dead', 'blocked') and d.finished_at < now() - c.retain_dead
         order by d.finished_at limit p_batch
           for update skip locked);
    end if;
    select count(*) into v_attempts from public.delivery_attempts where delivery_id = any (v_ids);
    delete from public.event_deliveries where id = any (v_ids);
    get diagnostics p_count = row_count;
    p_extra := jsonb_set(p_extra, '{delivery_attempts}',
                         to_jsonb(coalesce((p_extra ->> 'delivery_attempts')::integer, 0) + v_attempts));
  elsif p_kind = 'notifications_compacted' then
    update public.notifications set text = '', response = null, error = null
     where id in (select n.id from public.notifications n
                   where n.text <> '' and n.created_at < now() - c.retain_notifications
                     -- only finished ones: never one that may still be sent or digested
                     and (n.status in ('sent', 'recorded', 'unknown', 'unconfigured', 'digested', 'suppressed')
                          or (n.status in ('queued', 'rate_limited') and n.digest_key is not null))
                   order by n.created_at limit p_batch
                     for update skip locked);
    get diagnostics p_count = row_count;
  elsif p_kind = 'notifications' then
    delete from public.notifications
     where id in (select n.id from public.notifications n
                   where n.created_at < now() - c.retain_events
                   order by n.created_at limit p_batch
                     for update skip locked);
    get diagnostics p_count = row_count;
  elsif p_kind = 'shadow_results' then
    select column_name into v_col from information_schema.columns
     where table_schema = 'public' and table_name = 'shadow_results'
       and column_name in ('created_at', 'recorded_at', 'decided_at')
     order by array_position(array['created_at', 'recorded_at', 'decided_at']::name[], column_name::name) limit 1;
    if v_col is null then
      return;
    end if;
    execute format('delete from public.shadow_results where ctid = any (array(
                      select ctid from public.shadow_results where %1$I < $1
                       order by %1$I limit $2 for update skip locked))', v_col)
      using now() - c.retain_shadow_results, p_batch;
    get diagnostics p_count = row_count;
  elsif p_kind in ('tick_events', 'events') then
    -- Statement 1 locks the candidates; statement 2 (a fresh snapshot) sees
    -- every delivery committed before the lock, and none can be added now
    -- (a delivery's foreign key needs a share lock on its event).
    if p_kind = 'tick_events' then
      v_events := array(
        select e.id from public.events e
         where e.type = 'clock.tick' and e.created_at < now() - c.retain_ticks
           and not exists (select 1 from public.event_deliveries d
                            where d.event_id = e.id and not public.delivery_prunable_with_event(d, c))
         order by e.created_at limit p_batch
           for update of e skip locked);
    else
      v_events := array(
        select e.id from public.events e
         where e.created_at < now() - c.retain_events
           and not exists (select 1 from public.event_deliveries d
                            where d.event_id = e.id and not public.delivery_prunable_with_event(d, c))
         order by e.created_at limit p_batch
           for update of e skip locked);
    end if;
    if cardinality(v_events) = 0 then
      return;
    end if;
    with held as (
      select d.id from public.event_deliveries d
       where d.event_id = any (v_events) and public.delivery_prunable_with_event(d, c)
         for update skip locked),
    gone as (
      delete from public.events e
       where e.id = any (v_events)
         and not exists (select 1 from public.event_deliveries d
                          where d.event_id = e.id and d.id not in (select id from held))
      returning e.id)
    select (select count(*) from gone),
           (select count(*) from public.event_deliveries d where d.event_id in (select id from gone))
      into p_count, v_cascaded;
    p_extra := jsonb_set(p_extra, '{deliveries_with_events}',
                         to_jsonb(coalesce((p_extra ->> 'deliveries_with_events')::integer, 0) + v_cascaded));
  else
    raise exception using errcode = '22023', message = format('unknown prune kind %L', p_kind);
  end if;
end
$$;

-- A delivery that may go together with its event: finished, and not a dead
-- letter a replay may still want.
create function public.delivery_prunable_with_event(d public.event_deliveries, c public.backbone_config)
returns boolean
language sql stable set search_path = public, pg_temp as $$
  select d.status = 'succeeded'
      or (d.status in ('dead', 'blocked') and c.retain_dead is not null and d.finished_at < now() - c.retain_dead)
$$;

-- Prune every kind now, in batches of p_batch rows; returns (and records in
-- prune_runs) what was removed per kind, null for a kind kept forever or a
-- table that does not exist, plus any kind skipped on a lock or a timeout.
create function public.prune_retention(p_batch integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp
set lock_timeout = '200ms' as $$
declare
  c public.backbone_config;
  v_started timestamptz := clock_timestamp();
  v_deadline timestamptz;
  v_result jsonb := '{}';
  v_extra jsonb := jsonb_build_object('delivery_attempts', 0, 'deliveries_with_events', 0);
  v_errors jsonb := '{}';
  v_kind text;
  v_period interval;
  v_n integer;
  v_total integer;
  v_round integer;
begin
  if p_batch is null or p_batch < 1 then
    raise exception using errcode = '22023', message = 'prune_retention: p_batch must be at least 1';
  end if;
  select * into c from public.backbone_config;
  v_deadline := v_started + make_interval(secs => c.prune_budget_ms / 1000.0);
  foreach v_kind in array array['succeeded_deliveries', 'dead_deliveries', 'notifications',
                                'notifications_compacted', 'shadow_results', 'tick_events', 'events'] loop
    v_period := case v_kind when 'succeeded_deliveries' then c.retain_succeeded
                            when 'dead_deliveries' then c.retain_dead
                            when 'notifications_compacted' then c.retain_notifications
                            when 'notifications' then c.retain_events
                            when 'shadow_results' then c.retain_shadow_results
                            when 'tick_events' then c.retain_ticks
                            else c.retain_events end;
    if v_period is null or (v_kind = 'shadow_results' and to_regclass('public.shadow_results') is null) then
      v_result := v_result || jsonb_build_object(v_kind, null);
      continue;
    end if;
    v_total := 0;
    v_round := 0;
    loop
      exit when v_round >= c.prune_batches or clock_timestamp() >= v_deadline;
      v_round := v_round + 1;
      begin
        select p_count, p_extra into v_n, v_extra from public.prune_batch(v_kind, p_batch, c, v_extra);
      exception when lock_not_available or foreign_key_violation then
        v_errors := v_errors || jsonb_build_object(v_kind, sqlerrm);
        exit;
      end;
      v_total := v_total + v_n;
      exit when v_n < p_batch;
    end loop;
    v_result := v_result || jsonb_build_object(v_kind, v_total);
  end loop;
  v_result := v_result || v_extra;
  delete from public.prune_runs where started_at < now() - interval '7 days';
  insert into public.prune_runs (started_at, duration_ms, removed, errors)
  values (v_started, extract(epoch from clock_timestamp() - v_started) * 1000, v_result,
          nullif(v_errors, '{}'));
  return v_result || jsonb_build_object('duration_ms',
                                        round((extract(epoch from clock_timestamp() - v_started) * 1000)::numeric, 1))
         || case when v_errors = '{}' then '{}'::jsonb else jsonb_build_object('errors', v_errors) end;
end
$$;

-- run_periodic's entry: prune when prune_every has passed since the last run
-- (null otherwise, or when another session is pruning). Never raises: the
-- sweep that shares its transaction must not be rolled back by pruning.
create function public.prune_retention_due(p_batch integer default 500) returns jsonb
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  v_every interval := (select prune_every from public.backbone_config);
begin
  if v_every is null or not pg_try_advisory_xact_lock(hashtextextended('signalsloop.prune_retention', 0)) then
    return null;
  end if;
  if exists (select 1 from public.prune_runs where started_at > now() - v_every) then
    return null;
  end if;
  return public.prune_retention(p_batch);
exception when others then
  return jsonb_build_object('error', sqlerrm);
end
$$;

-- run_periodic() calls prune_retention_due() (see 20261201009900_periodic_all.sql,
-- the whole list of periodic tasks).

revoke execute on function public.prune_batch(text, integer, public.backbone_config, jsonb),
  public.delivery_prunable_with_event(public.event_deliveries, public.backbone_config),
  public.prune_retention(integer), public.prune_retention_due(integer)
  from public, anon, authenticated;
grant execute on function public.prune_batch(text, integer, public.backbone_config, jsonb),
  public.delivery_prunable_with_event(public.event_deliveries, public.backbone_config),
  public.prune_retention(integer), public.prune_retention_due(integer)
  to service_role;
