"""Row-level security as DESIGN.md section 5 says, with Supabase's own roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import psycopg
import pytest

from tests.helpers import Seed


@contextmanager
def as_role(conn: psycopg.Connection, role: str, user: UUID | None = None) -> Iterator[psycopg.Connection]:
    """Act as PostgREST does: switch role and set the JWT claims for the transaction."""
    with conn.transaction():
        conn.execute(f"set local role {role}")
        claims = {"role": role, **({"sub": str(user)} if user else {})}
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
        yield conn


@pytest.fixture
def world(seed: Seed) -> dict[str, UUID]:
    alice, bob = seed.user("alice@example.com"), seed.user("bob@example.com")
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    post = seed.post(theirs, "Bob's private feedback", author=bob)
    return {"alice": alice, "bob": bob, "mine": mine, "theirs": theirs, "post": post}


def test_anon_reads_nothing_and_writes_nothing(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    for table in ["projects", "posts", "events", "event_deliveries", "agents", "sentiment_analysis"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "anon"):
            db.execute(f"select count(*) as n from {table}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "anon"):
        db.execute("insert into posts (project_id, title) values (%s, 'spam')", (world["mine"],))


def test_member_inserts_feedback_into_own_project_only(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    with as_role(db, "authenticated", world["alice"]):
        db.execute("insert into posts (project_id, title, author_id) values (%s, 'Mine', %s)",
                   (world["mine"], world["alice"]))
        visible = db.execute("select title from posts").fetchall()
    assert [r["title"] for r in visible] == ["Mine"], "alice sees her project's feedback and not bob's"
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
        db.execute("insert into posts (project_id, title, author_id) values (%s, 'Not mine', %s)",
                   (world["theirs"], world["alice"]))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
        db.execute("insert into votes (post_id, user_id) values (%s, %s)", (world["post"], world["alice"]))


def test_member_sees_own_project_events_but_cannot_write_them(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    with as_role(db, "authenticated", world["alice"]):
        db.execute("insert into posts (project_id, title, author_id) values (%s, 'Mine', %s)",
                   (world["mine"], world["alice"]))
        events = db.execute("select type, metadata from events").fetchall()
        # Their own projects' deliveries, for the dashboard (see test_dashboard_access.py).
        assert {r["project_id"] for r in db.execute("select project_id from event_deliveries")} == {world["mine"]}
    assert [e["type"] for e in events] == ["feedback.created"]
    assert events[0]["metadata"]["project_id"] == str(world["mine"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
        db.execute("insert into events (type, aggregate_type, aggregate_id, metadata) values "
                   "('feedback.created', 'feedback', gen_random_uuid(), %s)",
                   (json.dumps({"project_id": str(world["mine"])}),))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
        db.execute("select * from claim_delivery(gen_random_uuid(), 'sentiment')")


def test_only_the_service_role_writes_events_and_deliveries(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    with as_role(db, "service_role"):
        db.execute("insert into events (type, aggregate_type, aggregate_id, metadata) values "
                   "('feedback.created', 'feedback', %s, %s)",
                   (world["post"], json.dumps({"project_id": str(world["theirs"])})))
        claimed = db.execute("select * from claim_delivery((select id from events order by created_at desc limit 1),"
                             " 'sentiment', 'test')").fetchone()
    assert claimed["outcome"] == "claimed"
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["bob"]):
        db.execute("update event_deliveries set status = 'succeeded'")
    assert {d["status"] for d in db.execute("select status from event_deliveries")} >= {"running", "pending"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["bob"]):
        db.execute("insert into sentiment_analysis (feedback_id, project_id, label, score, confidence, model) "
                   "values (%s, %s, 'positive', 1, 1, 'forged')", (world["post"], world["theirs"]))


def test_members_cannot_forge_counters_status_or_move_posts(db: psycopg.Connection, world: dict[str, UUID],
                                                            seed: Seed) -> None:
    other = seed.project(owner=world["alice"])
    with as_role(db, "authenticated", world["alice"]):
        post = db.execute("insert into posts (project_id, title, author_id) values (%s, 'Mine', %s) returning id",
                          (world["mine"], world["alice"])).fetchone()["id"]
        db.execute("update posts set title = 'Mine, edited' where id = %s", (post,))
    for forged in ["vote_count = 9999", "status = 'done'", f"project_id = '{other}'", "comment_count = 5"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
            db.execute(f"update posts set {forged} where id = %s", (post,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
        db.execute("insert into posts (project_id, title, author_id, vote_count) values (%s, 'x', %s, 500)",
                   (world["mine"], world["alice"]))
    row = db.execute("select title, vote_count, status, project_id from posts where id = %s", (post,)).fetchone()
    assert row == {"title": "Mine, edited", "vote_count": 0, "status": "open", "project_id": world["mine"]}


def test_only_the_policy_helpers_are_callable_by_api_roles(db: psycopg.Connection) -> None:
    """Every other project function is the service role's (or the owner's),
    but the dashboard's reads, which run as their caller (security invoker,
    so RLS applies); tests/supabase/test_privileges.py holds the full allowlist."""
    rows = db.execute("""
        select p.proname, r.rolname, p.prosecdef from pg_proc p
         cross join (values ('anon'), ('authenticated')) r(rolname)
         where p.pronamespace = 'public'::regnamespace and has_function_privilege(r.rolname, p.oid, 'execute')
    """).fetchall()
    reads = [r for r in rows if r["proname"].startswith("dashboard_")]
    assert reads and not [r for r in reads if r["prosecdef"]], "the dashboard's reads run as the caller"
    assert sorted({(r["proname"], r["rolname"]) for r in rows}) == [
        ("dashboard_agent_health", "authenticated"), ("dashboard_chain", "authenticated"),
        ("dashboard_dead_letters", "authenticated"), ("dashboard_events", "authenticated"),
        ("dashboard_filters", "authenticated"), ("dashboard_replay_log", "authenticated"),
        ("dashboard_since", "authenticated"), ("dashboard_success_metrics", "authenticated"),
        ("is_project_admin", "authenticated"), ("is_project_member", "authenticated"),
        ("is_project_owner", "authenticated"), ("names_within", "authenticated"),
        ("post_project", "authenticated"), ("project_settings_problem", "authenticated"),
        ("replay_dead_letters", "authenticated")]


def test_post_project_reveals_nothing_to_non_members(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    with as_role(db, "authenticated", world["alice"]):
        assert db.execute("select post_project(%s) as p", (world["post"],)).fetchone()["p"] is None
    with as_role(db, "authenticated", world["bob"]):
        assert db.execute("select post_project(%s) as p", (world["post"],)).fetchone()["p"] == world["theirs"]


def test_a_member_creates_a_project_reads_it_back_and_the_owner_invites(db: psycopg.Connection,
                                                                          world: dict[str, UUID]) -> None:
    with as_role(db, "authenticated", world["alice"]):
        project = db.execute("insert into projects (name, slug, owner_id) values ('New', 'new-one', %s) "
                             "returning id, name", (world["alice"],)).fetchone()
        assert project["name"] == "New", "insert ... returning works for the creator"
        db.execute("insert into project_members (project_id, user_id) values (%s, %s)", (project["id"], world["bob"]))
    with as_role(db, "authenticated", world["bob"]):
        assert [r["name"] for r in db.execute("select name from projects order by name")] == ["Acme", "New"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["bob"]):
        db.execute("insert into project_members (project_id, user_id) values (%s, %s)",
                   (project["id"], world["bob"]))  # a plain member invites nobody


def test_members_edit_a_specs_text_and_status_but_not_where_it_came_from(db: psycopg.Connection,
                                                                        world: dict[str, UUID]) -> None:
    spec = db.execute("insert into specs (project_id, title) values (%s, 'Dark mode') returning id",
                      (world["mine"],)).fetchone()["id"]
    with as_role(db, "authenticated", world["alice"]):
        db.execute("update specs set status = 'approved', title = 'Dark mode v1' where id = %s", (spec,))
    for forged in ["source = 'agent'", "theme_id = gen_random_uuid()", "model = 'forged'",
                   f"project_id = '{world['theirs']}'"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
            db.execute(f"update specs set {forged} where id = %s", (spec,))
    row = db.execute("select title, status, source from specs where id = %s", (spec,)).fetchone()
    assert row == {"title": "Dark mode v1", "status": "approved", "source": "human"}


def test_a_removed_member_can_no_longer_delete_votes_or_touch_posts(db: psycopg.Connection, seed: Seed,
                                                                   world: dict[str, UUID]) -> None:
    """votes_delete_own checked only the voter: after leaving a project, an
    unfiltered delete still removed one's old votes there (and published
    feedback.voted into it); posts_edit_own answered a former author's
    update with an error that told the post still exists."""
    db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')",
               (world["theirs"], world["alice"]))
    with as_role(db, "authenticated", world["alice"]):
        db.execute("insert into votes (post_id, user_id) values (%s, %s)", (world["post"], world["alice"]))
        hers = db.execute("insert into posts (project_id, title, author_id) values (%s, 'Alice was here', %s)"
                          " returning id", (world["theirs"], world["alice"])).fetchone()["id"]
    db.execute("delete from project_members where project_id = %s and user_id = %s", (world["theirs"], world["alice"]))
    voted = len(seed.events("feedback.voted"))
    with as_role(db, "authenticated", world["alice"]):
        assert db.execute("delete from votes where true").rowcount == 0
        assert db.execute("update posts set title = 'edited after leaving' where true").rowcount == 0
    assert db.execute("select count(*) as n from votes where user_id = %s", (world["alice"],)).fetchone()["n"] == 1
    assert db.execute("select title from posts where id = %s", (hers,)).fetchone()["title"] == "Alice was here"
    assert len(seed.events("feedback.voted")) == voted
    db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')",
               (world["theirs"], world["alice"]))
    with as_role(db, "authenticated", world["alice"]):  # a member again: her own vote is hers to take back
        assert db.execute("delete from votes where true").rowcount == 1


@pytest.mark.parametrize(("aliases", "domains"), [
    (["ok", None], []), (["   "], []), (["x" * 101], []), ([], ["d" * 254]), ([], [None]),
])
def test_competitor_names_are_bounded_and_never_null(db: psycopg.Connection, world: dict[str, UUID],
                                                     aliases: list[str | None], domains: list[str | None]) -> None:
    with pytest.raises(psycopg.errors.CheckViolation), as_role(db, "authenticated", world["alice"]):
        db.execute("insert into competitors (project_id, name, aliases, domains) values (%s, 'Rival', %s, %s)",
                   (world["mine"], aliases, domains))


def test_competitor_names_at_their_limits_are_accepted(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    with as_role(db, "authenticated", world["alice"]):
        db.execute("insert into competitors (project_id, name, aliases, domains) values (%s, 'Rival', %s, %s)",
                   (world["mine"], ["a" * 100, "Rival HQ"], ["d" * 253]))
        assert db.execute("select count(*) as n from competitors").fetchone()["n"] == 1
