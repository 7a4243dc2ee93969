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

-- Least privilege for everything this release added after (or beside)
-- 2026120100040001's list: no TRUNCATE, TRIGGER, REFERENCES or MAINTAIN,
-- nothing for anon, closed sequences (no setval), EXECUTE for the service
-- role only (trigger functions: nobody). These tables were created by
-- earlier migrations, so the call keeps what they granted members; the
-- revokes below take back what no member policy needs.
select public.lock_down_project_objects(array[
  -- 20261201000110_drain (after 2026120100040001's list was written), 20261201000120_rollout
  'rollout_bucket', 'runs_in_shadow', 'shadow_results', 'rollout_changes', 'set_rollout', 'complete_shadow',
  'rollback_rollout',
  -- 20261201000300_cron_compat, 20261201000301_doctor
  'schedule_sweep', 'doctor_report',  -- run_periodic_for is a procedure: 20261201000300 narrows it
  -- (2026120100040002 and 2026120100040003 lock their own objects down)
  -- 20261201000500_phase3_agents
  'competitors', 'competitor_mentions', 'competitive_threats', 'user_activity', 'user_engagement', 'spec_comments',
  'roadmap_items', 'competitor_mentions_between', 'engagement_activity', 'spec_comments_publish',
  'specs_publish_updated', 'agent_writable_tables',
  -- 2026120100060001..3: wildcards and the clock, smart notifications, spec quality
  'clock_ticks', 'clock_iso', 'clock_periodic', 'clock_tick_id', 'publish_clock_tick', 'subscribes',
  'valid_subscriptions', 'notification_feedback', 'notifications_to_digest', 'record_notification_feedback',
  'spec_quality_checks', 'specs_bump_version',
  -- 20261201000700_dashboard, 20261201000710_agent_alerts
  'replay_log', 'replay_dead_letters', 'events_notify_dashboard', 'agent_alerts', 'agent_alert_runs',
  'agent_health_now', 'evaluate_agent_alerts', 'publish_alert_event',
  -- 20261201000800_hybrid_search
  'feedback_lexemes', 'embedding_similarity', 'feedback_tsvector', 'hybrid_weights', 'lexeme_overlap',
  'lexeme_query', 'match_feedback_hybrid', 'nearest_feedback', 'posts_index_lexemes',
  -- 20261201000900_retention
  'prune_runs', 'delivery_prunable_with_event', 'prune_batch', 'prune_retention', 'prune_retention_due']);

-- Members read these through their *_read policies and write none of them;
-- clock_ticks has no member policy at all.
revoke all on public.clock_ticks from authenticated;
revoke insert, update, delete on public.notification_feedback, public.spec_quality_checks from authenticated;
-- The lexeme index is written by posts_index_lexemes() and pruned by the
-- retention sweep (both security definer); the service role only reads it.
revoke insert, update, delete on public.feedback_lexemes from service_role;
-- Members replay their projects' dead letters from the dashboard (owners and
-- admins only, checked inside; every replay is recorded in replay_log).
grant execute on function public.replay_dead_letters(uuid, uuid, text, text, timestamptz, timestamptz, text)
  to authenticated;

-- Inner steps of security-definer functions (which run as the owner): not an
-- API, not even the service role's. valid_subscriptions stays: the agents
-- check constraint calls it as whoever writes the registry.
revoke execute on function public.rollout_bucket(text, uuid), public.runs_in_shadow(public.agents, uuid),
  public.agent_writable_tables(), public.clock_iso(timestamptz), public.clock_tick_id(timestamptz, uuid),
  public.subscribes(text[], text, text, text),
  public.delivery_prunable_with_event(public.event_deliveries, public.backbone_config),
  public.prune_batch(text, integer, public.backbone_config, jsonb),
  public.publish_alert_event(public.agent_alerts, text, jsonb), public.agent_health_now(),
  public.embedding_similarity(text, double precision[], uuid[]),
  public.lexeme_query(tsvector, integer, double precision),
  public.nearest_feedback(uuid, text, double precision[], integer, uuid)
  from service_role;
