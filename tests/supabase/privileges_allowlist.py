"""THE allowlist: every privilege anon, authenticated and service_role may hold
on the project's objects, each row with its reason. Every table, sequence,
function and schema of the project appears in at least one row, even when it
grants nothing (privileges ""): a new object without a decision fails
tests/supabase/test_privileges.py.

Row: (kind, objects, roles, privileges, reason); objects, roles and
privileges are space-separated. kind "column" lists ``table(column)`` objects
for privileges held on those columns only.
"""

from __future__ import annotations

Row = tuple[str, str, str, str, str]

DML = "SELECT INSERT UPDATE DELETE"
MEMBER_READ = ("public.projects public.posts public.votes public.comments public.specs public.events "
               "public.sentiment_analysis public.themes public.theme_feedback public.duplicates "
               "public.priority_scores public.notifications public.project_members")
SERVICE_ONLY_TABLES = ("public.project_integrations public.feedback_embeddings public.agents "
                       "public.event_deliveries public.delivery_attempts public.backbone_config")
# Read by members through each table's *_read policy (is_project_member), written by agents and the
# backbone only (competitors and spec_comments take member writes too, below).
MEMBER_READ_RESULTS = ("public.shadow_results public.competitors public.competitor_mentions "
                       "public.competitive_threats public.user_activity public.user_engagement "
                       "public.spec_comments public.roadmap_items public.notification_feedback "
                       "public.spec_quality_checks public.agent_alerts")
# Logs and bookkeeping written only by the backbone's security-definer functions.
LOGS = ("public.replay_log public.rollout_changes public.clock_ticks public.agent_alert_runs public.prune_runs "
        "public.event_rate_limits")
# No member policy: the backbone's bookkeeping.
SERVICE_ONLY_LOGS = ("public.rollout_changes public.clock_ticks public.agent_alert_runs public.prune_runs "
                     "public.event_rate_limits")
# Every column of the ledger but claim_token (the proof of a claim complete_delivery and fail_delivery take).
DELIVERY_COLUMNS = ("id event_id agent event_type project_id status attempts max_attempts next_attempt_at ring_after "
                    "lease_until claimed_by last_error event_created_at first_started_at started_at finished_at "
                    "rung_at ring_count replay_count created_at updated_at shadow ring_errors last_ring_error "
                    "last_request_id")
ATTEMPT_COLUMNS = "id delivery_id attempt worker started_at finished_at outcome error"


def columns(table: str, names: str) -> str:
    return " ".join(f"{table}({name})" for name in names.split())


ALLOWLIST: list[Row] = [
    # --- schemas ------------------------------------------------------------------------------
    ("schema", "public", "anon authenticated service_role", "USAGE",
     "PostgREST resolves every API request in public; what is inside decides the rest"),
    ("schema", "supabase_migrations", "", "",
     "migration history: the owner's (signalsloop db migrate, supabase db push) only"),
    ("table", "supabase_migrations.schema_migrations", "", "",
     "migration history: the owner's only"),

    # --- tables: the service role -------------------------------------------------------------
    ("table", f"{MEMBER_READ} {SERVICE_ONLY_TABLES} {MEMBER_READ_RESULTS}", "service_role", DML,
     "the backbone's trusted server role (bypasses RLS): the functions read rows through PostgREST "
     "(shared/supabase_store.py) and write through the RPCs; operators' tools with the service-role key "
     "write rows (deploy sets agents.endpoint_url); never TRUNCATE, TRIGGER or REFERENCES"),
    ("table", LOGS, "service_role", "SELECT",
     "replay, rollout, clock, alert-run, prune and rate-limit records: operators read them; only the "
     "backbone's security-definer functions write them, so a service-role key cannot rewrite or erase them"),
    ("table", "public.feedback_lexemes", "", "",
     "nobody's: hybrid search reads the lexeme index inside match_feedback_hybrid, posts_index_lexemes() "
     "and the retention sweep write it (all security definer); the backfill and benchmarks run as the owner"),
    ("table", "public.lexeme_shares_cache", "", "",
     "nobody's: lexeme_shares() reads it and refresh_lexeme_shares() (the sweep) writes it, both security definer"),

    ("table", "public.agent_drainers", "service_role", "SELECT",
     "operators see which requests are draining; claim_next, end_drain, drain_hold (security definer) write it"),
    ("table", "public.agent_drainers", "", "", "members: nothing (the ledger's own bookkeeping)"),
    ("table", "public.agent_wakes", "service_role", "SELECT",
     "operators see which wakes are on their way; ring_doorbell and claim_delivery (security definer) write it"),
    ("table", "public.agent_wakes", "", "", "members: nothing (the ledger's own bookkeeping)"),

    ("table", "public.rate_limit_hits", "service_role", "SELECT",
     "operators see where the vote rate limit bit (a view over event_rate_limits)"),
    ("table", "public.rate_limit_hits", "", "", "members: nothing (their own limits are not theirs to read)"),

    # --- tables: signed-in members, beside their RLS policies ----------------------------------
    ("table", MEMBER_READ, "authenticated", "SELECT",
     "members read their projects' rows (each table's *_read policy; the live dashboard)"),
    ("table", SERVICE_ONLY_TABLES, "", "",
     "no table-wide member privilege: secrets (project_integrations), vectors, the ledger and the "
     "registry (members see some of their columns, below) are the service role's alone"),
    ("column", f"{columns('public.event_deliveries', DELIVERY_COLUMNS)} "
               f"{columns('public.delivery_attempts', ATTEMPT_COLUMNS)}", "authenticated", "SELECT",
     "the live dashboard: members read their projects' deliveries and those deliveries' attempts "
     "(deliveries_read, attempts_read), never the claim tokens; writes stay with the service role's RPCs"),
    ("table", MEMBER_READ_RESULTS, "authenticated", "SELECT",
     "members read their projects' shadow results, competitive intelligence, engagement, spec comments "
     "and quality checks, roadmap, notification feedback and agent alerts (each *_read policy; the "
     "dashboard)"),
    ("table", "public.replay_log", "authenticated", "SELECT",
     "members read their projects' replays on the dashboard (replay_log_read)"),
    ("table", SERVICE_ONLY_LOGS, "", "",
     "no member policy: rollout history, clock ticks, alert runs, prune runs and rate limits are the "
     "backbone's"),
    ("column", "public.agents(name) public.agents(event_types) public.agents(enabled) public.agents(mode) "
               "public.agents(rollout_percent) public.agents(circuit_state) public.agents(consecutive_failures)",
     "authenticated", "SELECT",
     "what the dashboard shows of the registry (agents_read: names, subscriptions, mode, rollout, circuit), "
     "never its endpoints, secrets or tuning"),
    ("column", "public.competitors(project_id) public.competitors(name) public.competitors(aliases) "
               "public.competitors(domains)", "authenticated", "INSERT",
     "members add competitors to their projects' catalogue (competitors_create); never ids or dates"),
    ("column", "public.competitors(name) public.competitors(aliases) public.competitors(domains)",
     "authenticated", "UPDATE", "members edit the catalogue's content (competitors_edit)"),
    ("table", "public.competitors", "authenticated", "DELETE",
     "members remove competitors from their projects' catalogue (competitors_delete)"),
    ("column", "public.spec_comments(spec_id) public.spec_comments(author_id) public.spec_comments(body)",
     "authenticated", "INSERT", "members comment on their projects' specs as themselves (spec_comments_create)"),
    ("column", "public.projects(name) public.projects(slug) public.projects(owner_id) public.projects(settings)",
     "authenticated", "INSERT",
     "a member creates a project they own (projects_create); the id is made by the server and slugs are "
     "unique per owner, so no 'duplicate key' answer tells whether another tenant's id or slug exists"),
    ("column", "public.project_members(project_id) public.project_members(user_id) public.project_members(role)",
     "authenticated", "INSERT", "owners and admins invite (members_invite; admins invite members only)"),
    ("table", "public.project_members", "authenticated", "DELETE",
     "owners and admins remove members; only owners remove admins (members_remove)"),
    ("column", "public.posts(project_id) public.posts(title) public.posts(body) public.posts(author_id)",
     "authenticated", "INSERT", "members post feedback in their projects (posts_create); never counters or status"),
    ("column", "public.posts(title) public.posts(body)", "authenticated", "UPDATE",
     "authors edit their feedback's text (posts_edit_own)"),
    ("column", "public.votes(post_id) public.votes(user_id)", "authenticated", "INSERT",
     "members vote in their projects (votes_create)"),
    ("table", "public.votes", "authenticated", "DELETE", "members take back their own vote (votes_delete_own)"),
    ("column", "public.comments(post_id) public.comments(author_id) public.comments(body)", "authenticated",
     "INSERT", "members comment in their projects (comments_create)"),
    ("column", "public.specs(title) public.specs(status) public.specs(content) public.specs(linked_url)",
     "authenticated", "UPDATE",
     "members edit a spec's text; approving, completing and linking is for owners and admins (specs_guard)"),

    # --- sequences -------------------------------------------------------------------------------
    ("sequence", "public.event_deliveries_id_seq public.delivery_attempts_id_seq public.shadow_results_id_seq "
                 "public.rollout_changes_id_seq public.replay_log_id_seq public.notification_feedback_id_seq "
                 "public.prune_runs_id_seq", "", "",
     "identity columns: an insert takes the next value without any privilege on the sequence, and "
     "nobody calls nextval(), currval() or setval() on them"),

    # --- functions: policy helpers ------------------------------------------------------------------
    ("function", "public.is_project_member(uuid) public.is_project_admin(uuid) public.post_project(uuid) "
                 "public.is_project_owner(uuid)",
     "authenticated", "EXECUTE",
     "RLS policies call them as the querying member; they answer only about the caller's own projects "
     "(the service role bypasses RLS and needs none of them)"),

    # --- functions: the backbone's API --------------------------------------------------------------
    ("function", "public.claim_delivery(uuid, text, text) "
                 "public.complete_delivery(bigint, uuid, jsonb, jsonb) "
                 "public.claim_next(text, text, uuid) "
                 "public.claim_next(text, text, uuid, uuid, integer) public.end_drain(uuid, text, uuid, boolean) "
                 "public.drain_hold(uuid, text, uuid, integer, integer) "
                 "public.fail_delivery(bigint, uuid, text, boolean, double precision, boolean) "
                 "public.publish_events(jsonb) "
                 "public.reserve_notification(jsonb) public.finish_notification(text, text, text, jsonb, text)",
     "service_role", "EXECUTE", "the functions' RPCs through PostgREST (shared/supabase_store.py)"),
    ("function", "public.match_feedback(uuid, text, double precision[], integer, double precision, uuid)",
     "service_role", "EXECUTE",
     "the embeddings-only duplicate search: duplicate functions deployed before hybrid search "
     "(match_feedback_hybrid) still call it during a rolling deploy"),
    ("function", "public.complete_shadow(bigint, uuid, jsonb, text) "
                 "public.competitor_mentions_between(uuid, timestamp with time zone, timestamp with time zone) "
                 "public.engagement_activity(uuid, uuid, timestamp with time zone) "
                 "public.match_feedback_hybrid(uuid, uuid, text, double precision[], integer, double precision, "
                 "integer) "
                 "public.notifications_to_digest(uuid, timestamp with time zone) "
                 "public.notify_context(uuid, uuid, integer) public.priority_context(uuid, uuid) "
                 "public.duplicate_context(uuid, uuid, text, double precision[], integer, double precision) "
                 "public.record_notification_feedback(uuid, text, text, text) "
                 "public.doctor_report(integer, boolean, integer, integer)",
     "service_role", "EXECUTE", "more of the functions' RPCs (store.rpc in shared/ and functions/)"),
    ("function", "public.valid_subscriptions(text[])", "service_role", "EXECUTE",
     "the agents_event_types_valid check constraint calls it as whoever writes the registry"),
    ("function", "public.feedback_tsvector(text, text) public.lexeme_overlap(tsvector, tsvector) "
                 "public.hybrid_weights() public.identifier_parts(text) public.lexeme_shares() "
                 "public.lexeme_overlap_weighted(tsvector, tsvector, jsonb) "
                 "public.lexeme_overlaps_weighted(tsvector, tsvector[], jsonb)", "", "",
     "pure helpers of hybrid search: called inside match_feedback_hybrid and posts_index_lexemes "
     "(security definer) and by the owner's backfill and benchmarks"),
    ("function", "public.replay_dead_letters(uuid, uuid, text, text, timestamp with time zone, "
                 "timestamp with time zone, text)", "authenticated service_role", "EXECUTE",
     "the dashboard's replay of dead letters: it checks the caller is an owner or admin of the project "
     "and records every replay in replay_log; operators call it with the service-role key"),
    ("function", "public.dashboard_events(text[], uuid, text, text, timestamp with time zone, "
                 "timestamp with time zone, uuid, timestamp with time zone, uuid, timestamp with time zone, integer) "
                 "public.dashboard_filters() public.dashboard_chain(uuid) "
                 "public.dashboard_dead_letters(text, text, uuid, integer) public.dashboard_replay_log(integer) "
                 "public.dashboard_agent_health(double precision) public.dashboard_success_metrics(double precision)",
     "authenticated service_role", "EXECUTE",
     "the live dashboard's page reads (security invoker, so the caller's RLS decides): members call them "
     "through PostgREST with their own access token or as authenticated on a direct connection; operators "
     "with the service-role key"),
    ("function", "public.project_settings_problem(jsonb)", "authenticated service_role", "EXECUTE",
     "a pure check that the settings trigger (not security definer) runs as whoever writes a project: "
     "a member creating one, the service role (or an operator) editing settings"),
    ("function", "public.dashboard_since(double precision)", "authenticated service_role", "EXECUTE",
     "the start of a dashboard window, checked: the dashboard's reads (security invoker) call it as their "
     "caller, a member or an operator"),
    ("function", "public.names_within(text[], integer)", "authenticated service_role", "EXECUTE",
     "a pure check in competitors' CHECK constraints, which run with the writer's rights: members add "
     "and edit their projects' competitors, the service role and operators too"),
    ("function", "public.sweep_deliveries(integer) public.run_periodic(integer) public.replay_dead(text) "
                 "public.resolve_stale_notifications() public.prune_rate_limits() "
                 "public.collect_ring_errors(integer) public.record_ring_error(bigint, text) "
                 "public.replay_event(uuid, text) "
                 "public.replay_deliveries(uuid, text, text, uuid, timestamp with time zone, "
                 "timestamp with time zone, text[]) "
                 "public.set_rollout(text, text, integer, text, text) public.rollback_rollout(text, text, text) "
                 "public.schedule_sweep(integer) public.run_periodic_for(double precision, double precision) "
                 "public.clock_periodic() "
                 "public.publish_clock_tick(timestamp with time zone, uuid, timestamp with time zone) "
                 "public.evaluate_agent_alerts(boolean) public.prune_retention(integer) "
                 "public.prune_retention_due(integer)",
     "service_role", "EXECUTE",
     "operators' sweep, replay and ring-error bookkeeping (a relay beside pg_net), callable with the "
     "service-role key"),

    # --- functions: nobody's but the owner's --------------------------------------------------------
    ("function", "public.agent_secret() public.agent_writable_tables() public.apply_writes(jsonb) "
                 "public.backoff_seconds(integer) public.expire_attempt(event_deliveries) "
                 "public.lock_delivery(bigint) public.park_delivery(bigint, text) "
                 "public.publish_root_event(text, text, uuid, uuid, uuid, jsonb, text) "
                 "public.record_agent_failure(text) public.record_agent_success(text) "
                 "public.ring_doorbell(bigint[]) public.rings_needed(bigint[]) public.ring_next(text, uuid) "
                 "public.take_circuit_trial(text) public.take_event_allowance(uuid, uuid, text, integer) "
                 "public.take_claim(event_deliveries, text, boolean) "
                 "public.claim_result(text, bigint, uuid, integer, integer, text) "
                 "public.delivery_is_due(event_deliveries) public.doorbell_batches() public.batch_starves(integer) "
                 "public.wake_downstream(bigint[], text, backbone_config) "
                 "public.post_webhook(text, jsonb, text, integer)",
     "", "",
     "internal steps of the ledger's security-definer functions (which run as the owner); agent_secret "
     "would hand out the webhook secret"),
    ("function", "public.rollout_bucket(text, uuid) public.runs_in_shadow(agents, uuid) "
                 "public.clock_iso(timestamp with time zone) public.clock_tick_id(timestamp with time zone, uuid) "
                 "public.subscribes(text[], text, text, text) "
                 "public.delivery_prunable_with_event(event_deliveries, backbone_config) "
                 "public.prune_batch(text, integer, backbone_config, jsonb) "
                 "public.publish_alert_event(agent_alerts, text, jsonb) public.agent_health_now() "
                 "public.embedding_similarity(text, double precision[], uuid[]) "
                 "public.lexeme_query(tsvector, integer, double precision) "
                 "public.lexeme_terms(tsvector, jsonb, integer, double precision) public.lexeme_tsquery(text) "
                 "public.nearest_feedback(uuid, text, double precision[], integer, uuid) "
                 "public.lexeme_stats_version() public.lexeme_shares_live() public.refresh_lexeme_shares()", "", "",
     "inner steps of security-definer functions (take_claim, publish_clock_tick, fan_out_event, "
     "replay_deliveries, prune_retention, evaluate_agent_alerts, match_feedback_hybrid, run_periodic), which run as "
     "the owner; not an API"),
    ("function", "public.add_project_owner() public.touch_updated_at() public.count_votes() "
                 "public.count_comments() public.events_fill_metadata() public.fan_out_event() "
                 "public.recount_themes() public.posts_publish() public.votes_publish() "
                 "public.comments_publish() public.specs_publish() public.projects_check_settings() "
                 "public.specs_guard() public.spec_comments_publish() public.specs_publish_updated() "
                 "public.specs_bump_version() public.events_notify_dashboard() public.posts_index_lexemes()",
     "", "",
     "trigger functions: they fire without EXECUTE, and nobody calls them"),
    ("function", "public.changed_in_this_transaction(xid) public.lock_down_project_objects(text[]) "
                 "public.disable_jit() public.cache_plans(regprocedure)", "", "",
     "migration helpers, the owner's"),
]


def expand(rows: list[Row]) -> tuple[set[tuple[str, str, str, str]], dict[str, set[str]]]:
    """(allowed privileges as (kind, object, role, privilege), objects decided by kind)."""
    allowed: set[tuple[str, str, str, str]] = set()
    decided: dict[str, set[str]] = {}
    for kind, objects, roles, privileges, reason in rows:
        assert reason.strip(), f"allowlist row for {objects} has no reason"
        for obj in _split(objects):
            table = obj.split("(", 1)[0] if kind == "column" else obj
            decided.setdefault("table" if kind == "column" else kind, set()).add(table)
            allowed |= {(kind, obj, role, privilege) for role in roles.split() for privilege in privileges.split()}
    return allowed, decided


def _split(objects: str) -> list[str]:
    """Space-separated names, where a function's argument list may hold spaces."""
    names, depth, current = [], 0, ""
    for char in objects:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == " " and depth == 0:
            if current:
                names.append(current)
            current = ""
        else:
            current += char
    return [*names, current] if current else names
