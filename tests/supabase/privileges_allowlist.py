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
                       "public.event_deliveries public.delivery_attempts public.backbone_config "
                       "public.event_rate_limits")

ALLOWLIST: list[Row] = [
    # --- schemas ------------------------------------------------------------------------------
    ("schema", "public", "anon authenticated service_role", "USAGE",
     "PostgREST resolves every API request in public; what is inside decides the rest"),
    ("schema", "supabase_migrations", "", "",
     "migration history: the owner's (signalsloop db migrate, supabase db push) only"),
    ("table", "supabase_migrations.schema_migrations", "", "",
     "migration history: the owner's only"),

    # --- tables: the service role -------------------------------------------------------------
    ("table", f"{MEMBER_READ} {SERVICE_ONLY_TABLES}", "service_role", DML,
     "the backbone's trusted server role (functions through PostgREST, bypasses RLS) reads and writes "
     "rows; never TRUNCATE, TRIGGER or REFERENCES"),

    ("table", "public.rate_limit_hits", "service_role", "SELECT",
     "operators see where the vote rate limit bit (a view over event_rate_limits)"),
    ("table", "public.rate_limit_hits", "", "", "members: nothing (their own limits are not theirs to read)"),

    # --- tables: signed-in members, beside their RLS policies ----------------------------------
    ("table", MEMBER_READ, "authenticated", "SELECT",
     "members read their projects' rows (each table's *_read policy; the live dashboard)"),
    ("table", SERVICE_ONLY_TABLES, "", "",
     "no member policy: secrets (project_integrations), vectors, the registry and the ledger are "
     "the service role's alone"),
    ("column", "public.projects(name) public.projects(slug) public.projects(owner_id) public.projects(settings)",
     "authenticated", "INSERT",
     "a member creates a project they own (projects_create); the id is made by the server, so no "
     "'duplicate key' answer tells whether another tenant's id exists"),
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
    ("sequence", "public.event_deliveries_id_seq public.delivery_attempts_id_seq", "service_role", "USAGE SELECT",
     "ledger rows the service role may insert; no setval, and no nextval for anon or members"),

    # --- functions: policy helpers ------------------------------------------------------------------
    ("function", "public.is_project_member(uuid) public.is_project_admin(uuid) public.post_project(uuid) "
                 "public.is_project_owner(uuid)",
     "authenticated service_role", "EXECUTE",
     "RLS policies call them as the querying member; they answer only about the caller's own projects"),

    # --- functions: the backbone's API --------------------------------------------------------------
    ("function", "public.claim_delivery(uuid, text, text) "
                 "public.complete_delivery(bigint, uuid, jsonb, jsonb) "
                 "public.claim_next(text, text, uuid) public.ring_next(text, uuid) "
                 "public.fail_delivery(bigint, uuid, text, boolean, double precision, boolean) "
                 "public.publish_events(jsonb) "
                 "public.match_feedback(uuid, text, double precision[], integer, double precision, uuid) "
                 "public.reserve_notification(jsonb) public.finish_notification(text, text, text, jsonb, text)",
     "service_role", "EXECUTE", "the functions' RPCs through PostgREST (shared/supabase_store.py)"),
    ("function", "public.project_settings_problem(jsonb)", "authenticated service_role", "EXECUTE",
     "a pure check: the settings trigger runs it as the member writing a project; the runtime may ask "
     "why stored settings are invalid (to fail a delivery permanently)"),
    ("function", "public.sweep_deliveries(integer) public.run_periodic(integer) public.replay_dead(text) "
                 "public.resolve_stale_notifications() public.prune_rate_limits() "
                 "public.collect_ring_errors(integer) public.record_ring_error(bigint, text) "
                 "public.replay_event(uuid, text) "
                 "public.replay_deliveries(uuid, text, text, uuid, timestamp with time zone, "
                 "timestamp with time zone, text[])",
     "service_role", "EXECUTE",
     "operators' sweep, replay and ring-error bookkeeping (a relay beside pg_net), callable with the "
     "service-role key"),

    # --- functions: nobody's but the owner's --------------------------------------------------------
    ("function", "public.agent_secret() public.agent_writable_tables() public.apply_writes(jsonb) "
                 "public.backoff_seconds(integer) public.expire_attempt(event_deliveries) "
                 "public.lock_delivery(bigint) public.park_delivery(bigint, text) "
                 "public.publish_root_event(text, text, uuid, uuid, uuid, jsonb, text) "
                 "public.record_agent_failure(text) public.record_agent_success(text) "
                 "public.ring_doorbell(bigint[]) "
                 "public.take_circuit_trial(text) public.take_event_allowance(uuid, uuid, text, integer) "
                 "public.take_claim(event_deliveries, text, boolean) "
                 "public.claim_result(text, bigint, uuid, integer, integer, text) "
                 "public.delivery_is_due(event_deliveries)", "", "",
     "internal steps of the ledger's security-definer functions (which run as the owner); agent_secret "
     "would hand out the webhook secret"),
    ("function", "public.add_project_owner() public.touch_updated_at() public.count_votes() "
                 "public.count_comments() public.events_fill_metadata() public.fan_out_event() "
                 "public.recount_themes() public.posts_publish() public.votes_publish() "
                 "public.comments_publish() public.specs_publish() public.projects_check_settings() "
                 "public.specs_guard()", "", "",
     "trigger functions: they fire without EXECUTE, and nobody calls them"),
    ("function", "public.changed_in_this_transaction(xid) public.lock_down_project_objects(text[])", "", "",
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
