"""No existence oracle across tenants, tried as a signed-in member through
Supabase's roles (``set role authenticated`` with ``request.jwt.claims``):
whatever a member inserts answers the same whether another tenant's row
exists or not; members read the ledger without its claim tokens; the logs
only the backbone writes cannot be rewritten with the service-role key."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

import psycopg
import pytest

from tests.helpers import Seed
from tests.supabase.test_dashboard_access import kill
from tests.supabase.test_rls import as_role


@pytest.fixture
def victim(seed: Seed, db: psycopg.Connection) -> dict[str, UUID]:
    """Another tenant's project with a slug, a post, a spec and a competitor."""
    owner = seed.user()
    project = seed.project(owner=owner, slug="acme")
    post = seed.post(project, "Victim's feedback", author=owner)
    spec = db.execute("insert into specs (project_id, title) values (%s, 'Secret plan') returning id",
                      (project,)).fetchone()["id"]
    db.execute("insert into competitors (project_id, name) values (%s, 'Rival')", (project,))
    return {"owner": owner, "project": project, "post": post, "spec": spec}


def test_creating_a_project_tells_nothing_about_other_tenants_slugs(db: psycopg.Connection, seed: Seed,
                                                                    victim: dict[str, UUID]) -> None:
    attacker = seed.user()
    with as_role(db, "authenticated", attacker):
        for slug in ("acme", "not-taken"):  # the victim's slug and a free one: the same answer
            row = db.execute("insert into projects (name, slug, owner_id) values ('Mine', %s, %s) "
                             "on conflict do nothing returning slug", (slug, attacker)).fetchone()
            assert row == {"slug": slug}
    # The only conflict a member can meet is with a project they own.
    with pytest.raises(psycopg.errors.UniqueViolation, match="projects_owner_slug_key"), \
            as_role(db, "authenticated", attacker):
        db.execute("insert into projects (name, slug, owner_id) values ('Again', 'acme', %s)", (attacker,))
    owners = db.execute("select owner_id from projects where slug = 'acme' order by created_at").fetchall()
    assert [r["owner_id"] for r in owners] == [victim["owner"], attacker]


def answer(db: psycopg.Connection, user: UUID, sql: str, params: tuple[object, ...], secret: UUID) -> tuple[str, str]:
    """The error a member gets for ``sql``, with the probed id masked out."""
    with pytest.raises(psycopg.Error) as caught, as_role(db, "authenticated", user):
        db.execute(sql, params)
    return type(caught.value).__name__, str(caught.value).replace(str(secret), "<id>")


PROBES: dict[str, tuple[str, Callable[[dict[str, UUID], UUID], tuple[object, ...]], str]] = {
    # table: (insert, its parameters (victim's rows, the attacker), the probed row's key in victim)
    "votes": ("insert into votes (post_id, user_id) values (%s, %s) on conflict do nothing",
              lambda v, me: (v["post"], me), "post"),
    "comments": ("insert into comments (post_id, author_id, body) values (%s, %s, 'hi')",
                 lambda v, me: (v["post"], me), "post"),
    "posts": ("insert into posts (project_id, title, author_id) values (%s, 'x', %s)",
              lambda v, me: (v["project"], me), "project"),
    "spec_comments": ("insert into spec_comments (spec_id, author_id, body) values (%s, %s, 'hi')",
                      lambda v, me: (v["spec"], me), "spec"),
    "project_members": ("insert into project_members (project_id, user_id, role) values (%s, %s, 'member') "
                        "on conflict do nothing", lambda v, me: (v["project"], me), "project"),
    "competitors": ("insert into competitors (project_id, name) values (%s, 'Rival') on conflict do nothing",
                    lambda v, me: (v["project"],), "project"),
}


@pytest.mark.parametrize("table", sorted(PROBES))
def test_member_inserts_answer_the_same_for_other_tenants_rows_and_for_none(
        db: psycopg.Connection, seed: Seed, victim: dict[str, UUID], table: str) -> None:
    attacker = seed.user()
    seed.project(owner=attacker)  # a member of something, not of the victim's project
    sql, params, key = PROBES[table]
    made_up = {name: uuid4() for name in victim}
    existing = answer(db, attacker, sql, params(victim, attacker), victim[key])
    missing = answer(db, attacker, sql, params(made_up, attacker), made_up[key])
    assert existing == missing, "the answer tells whether the other tenant's row exists"
    assert existing[0] == "InsufficientPrivilege" and "row-level security" in existing[1]


def test_members_read_deliveries_and_attempts_but_never_claim_tokens(db: psycopg.Connection, seed: Seed) -> None:
    member = seed.user()
    project = seed.project(owner=member)
    seed.post(project, author=member)
    delivery = kill(db, project)  # a claimed, failed delivery: it has a claim token and an attempt
    for table in ("event_deliveries", "delivery_attempts"):
        for query in (f"select claim_token from {table}", f"select * from {table}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"table {table}"), \
                    as_role(db, "authenticated", member):
                db.execute(query)
        for role in ("anon", "authenticated"):
            assert not db.execute("select has_column_privilege(%s, %s, 'claim_token', 'SELECT') as ok",
                                  (role, f"public.{table}")).fetchone()["ok"]
    with as_role(db, "authenticated", member):
        row = db.execute("select d.id, d.status, d.last_error, a.outcome, a.error from event_deliveries d "
                         "join delivery_attempts a on a.delivery_id = d.id where d.id = %s", (delivery,)).fetchone()
    assert row == {"id": delivery, "status": "dead", "last_error": "boom", "outcome": "dead", "error": "boom"}


def test_the_service_role_reads_the_backbones_logs_but_cannot_rewrite_them(db: psycopg.Connection) -> None:
    for table in ("replay_log", "rollout_changes", "prune_runs", "agent_alert_runs", "clock_ticks",
                  "event_rate_limits"):
        with as_role(db, "service_role"):
            db.execute(f"select count(*) from {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "service_role"):
            db.execute(f"delete from {table}")
    with as_role(db, "service_role"):  # the security-definer function still records the replay
        assert db.execute("select replay_dead_letters(p_actor => 'ops') as n").fetchone()["n"] == 0
    assert db.execute("select actor from replay_log").fetchone()["actor"].startswith("ops as ")


def test_replaying_another_tenants_event_answers_as_for_an_event_that_does_not_exist(
        db: psycopg.Connection, seed: Seed, victim: dict[str, UUID]) -> None:
    attacker = seed.user()
    mine = seed.project(owner=attacker)
    theirs = seed.events("feedback.created")[0]["id"]
    assert seed.events("feedback.created")[0]["metadata"]["project_id"] == str(victim["project"])
    for project in (None, mine):
        answers = [answer(db, attacker, "select replay_dead_letters(p_project_id => %s, p_event_id => %s)",
                          (project, event), event) for event in (theirs, uuid4())]
        assert answers[0] == answers[1], "replay tells whether another tenant's event exists"
        assert answers[0][0] == "NoDataFound" and "unknown event <id>" in answers[0][1]
    db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')",
               (victim["project"], attacker))
    # A member of the event's project may see the event: being no admin is said as such.
    assert answer(db, attacker, "select replay_dead_letters(p_event_id => %s)", (theirs,), theirs)[0] == \
        "InsufficientPrivilege"
