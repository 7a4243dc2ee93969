"""Least privilege, proven by the catalog: what anon, authenticated and
service_role hold on the project's objects is exactly the allowlist, and
objects the project did not create keep Supabase's default grants."""

from __future__ import annotations

import psycopg
import pytest

from tests.supabase.privileges import API_ROLES, actual_privileges, project_objects
from tests.supabase.privileges_allowlist import ALLOWLIST, expand
from tests.supabase.test_rls import as_role


def test_api_roles_hold_exactly_the_allowlisted_privileges(db: psycopg.Connection) -> None:
    allowed, decided = expand(ALLOWLIST)
    actual = actual_privileges(db)
    assert sorted(actual - allowed) == [], "privileges held without an allowlist row"
    assert sorted(allowed - actual) == [], "allowlist rows the catalog does not show (stale or broken grant)"
    for kind, objects in project_objects(db).items():
        assert sorted(objects - decided.get(kind, set())) == [], f"{kind}s without a decision in the allowlist"
        assert sorted(decided.get(kind, set()) - objects) == [], f"allowlisted {kind}s that do not exist"


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_can_neither_truncate_nor_add_triggers_to_any_table(db: psycopg.Connection, role: str) -> None:
    tables = [t for t in sorted(project_objects(db)["table"])
              if db.execute("select relkind from pg_class where oid = %s::regclass", (t,)).fetchone()["relkind"] == "r"]
    assert "public.notifications" in tables and "public.projects" in tables
    db.execute("create function pg_temp.evil() returns trigger language plpgsql as 'begin return new; end'")
    for table in tables:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, role):
            db.execute(f"truncate {table} cascade")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, role):
            db.execute(f"create trigger evil after insert on {table} for each row execute function pg_temp.evil()")
    assert db.execute("select count(*) as n from pg_trigger where tgname = 'evil'").fetchone()["n"] == 0


def test_anon_and_members_cannot_advance_sequences(db: psycopg.Connection) -> None:
    for sequence in sorted(project_objects(db)["sequence"]):
        for role in ("anon", "authenticated"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, role):
                db.execute("select nextval(%s)", (sequence,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "service_role"):
            db.execute("select setval(%s, 1)", (sequence,))


def test_an_extension_enabled_after_the_migrations_keeps_its_default_grants(db: psycopg.Connection) -> None:
    if not db.execute("select 1 from pg_available_extensions where name = 'pg_trgm'").fetchone():
        pytest.skip("pg_trgm is not available on this server")
    db.execute("create extension pg_trgm with schema extensions")
    for role in API_ROLES:
        assert db.execute("select has_function_privilege(%s, 'extensions.similarity(text, text)', 'execute') as ok",
                          (role,)).fetchone()["ok"], role
        with as_role(db, role):
            assert db.execute("select extensions.similarity('dark mode', 'dark theme') > 0 as ok").fetchone()["ok"]


def test_a_teams_own_later_function_in_public_keeps_supabases_defaults(db: psycopg.Connection) -> None:
    db.execute("create function public.team_hello() returns text language sql as $$ select 'hi' $$")
    for role in API_ROLES:
        with as_role(db, role):
            assert db.execute("select public.team_hello() as v").fetchone()["v"] == "hi"


def test_lock_down_narrows_what_the_calling_migration_created_and_nothing_else(db: psycopg.Connection) -> None:
    db.execute("create table public.team_table (id int primary key)")  # a team's own, earlier
    with db.transaction():
        db.execute("create table public.added_later (id bigint generated always as identity primary key)")
        db.execute("create function public.added_rpc() returns int language sql as 'select 1'")
        db.execute("alter table public.posts add column added_flag boolean")  # altered, not created
        db.execute("create function public.added_trigger() returns trigger language plpgsql as "
                   "'begin return new; end'")
        narrowed = db.execute("select public.lock_down_project_objects() as n").fetchone()["n"]
    assert narrowed == 5, "the new table, its identity sequence, both functions and the altered posts"

    def can(role: str, check: str, obj: str, privilege: str) -> bool:
        return bool(db.execute(f"select {check}(%s, %s, %s) as ok", (role, obj, privilege)).fetchone()["ok"])

    for role in ("anon", "authenticated"):
        assert not any(can(role, "has_table_privilege", "public.added_later", p) for p in ("SELECT", "INSERT"))
    assert can("service_role", "has_table_privilege", "public.added_later", "INSERT")
    for role in ("authenticated", "service_role"):
        assert not can(role, "has_table_privilege", "public.added_later", "TRUNCATE")
        assert not can(role, "has_table_privilege", "public.added_later", "TRIGGER")
    for role in API_ROLES:  # an identity column needs no privilege on its sequence
        assert not can(role, "has_sequence_privilege", "public.added_later_id_seq", "USAGE")
    with as_role(db, "service_role"):
        assert db.execute("insert into public.added_later default values returning id").fetchone()["id"] == 1
    assert not can("anon", "has_function_privilege", "public.added_rpc()", "EXECUTE")
    assert not can("authenticated", "has_function_privilege", "public.added_rpc()", "EXECUTE")
    assert can("service_role", "has_function_privilege", "public.added_rpc()", "EXECUTE")
    assert not can("service_role", "has_function_privilege", "public.added_trigger()", "EXECUTE")
    assert can("authenticated", "has_table_privilege", "public.posts", "SELECT"), "an altered table keeps its grants"
    assert can("anon", "has_table_privilege", "public.team_table", "TRUNCATE"), "not the project's: untouched"
