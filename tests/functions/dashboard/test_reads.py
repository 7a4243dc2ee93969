"""The dashboard's two data paths over the same SQL functions
(20261202000401_dashboard_reads.sql): a direct connection as
``authenticated`` with the member's claims, and supabase-py through
PostgREST with the member's own access token. PostgREST is faked at its
HTTP boundary (respx) by forwarding each RPC to the real database as the
token's user, so the tables' RLS is what answers on both paths."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from uuid import UUID

import jwt
import psycopg
import pytest
import respx

from functions.dashboard import health, queries
from functions.dashboard.db import Identity, PsycopgReads
from functions.dashboard.supabase_reads import SessionExpired, SupabaseReads
from tests.fakes.supabase_rest import ANON_KEY, JWT_SECRET, SERVICE_ROLE_KEY, PostgrestOverDatabase
from tests.helpers import Seed
from tests.supabase.test_dashboard_access import kill

URL = "https://abc.supabase.co"


def token_of(user: UUID) -> str:
    """An access token as Supabase Auth signs it (HS256 with the project's secret)."""
    return jwt.encode({"sub": str(user), "role": "authenticated", "aud": "authenticated",
                       "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")


def member(user: UUID, label: str = "member") -> Identity:
    return Identity(user, label, access_token=token_of(user), refresh_token="r", expires_at=time.time() + 3600)


OPERATOR = Identity(None, "ops@example.com", operator=True)


@pytest.fixture
def world(seed: Seed, db: psycopg.Connection) -> dict[str, UUID]:
    alice, bob, carol = seed.user(), seed.user(), seed.user()
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')", (mine, carol))
    for n in range(4):
        seed.post(mine, f"Alice's feedback {n}")
    seed.post(theirs, "Bob's feedback")
    return {"alice": alice, "bob": bob, "carol": carol, "mine": mine, "theirs": theirs}


@pytest.fixture
def direct(db_url: str) -> Iterator[PsycopgReads]:
    reads = PsycopgReads(db_url, max_size=2)
    yield reads
    reads.close()


@pytest.fixture
def rest(db_url: str) -> Iterator[PostgrestOverDatabase]:
    fake = PostgrestOverDatabase(db_url)
    with respx.mock(assert_all_mocked=True) as api:
        api.post(url__startswith=f"{URL}/rest/v1/rpc/").mock(side_effect=fake.respx_side_effect)
        yield fake


@pytest.fixture
def supa(rest: PostgrestOverDatabase) -> Iterator[SupabaseReads]:
    reads = SupabaseReads(URL, ANON_KEY, SERVICE_ROLE_KEY)
    yield reads
    reads.close()


def projects_of(rows: list[dict[str, Any]]) -> set[str]:
    return {r["project_id"] for r in rows}


def test_the_sql_functions_as_a_member_on_the_direct_connection_return_only_their_projects(
        direct: PsycopgReads, world: dict[str, UUID], db: psycopg.Connection) -> None:
    kill(db, world["mine"])
    kill(db, world["theirs"])
    carol = member(world["carol"])
    events = queries.list_events(direct, carol, queries.EventFilter())
    assert projects_of(events) == {str(world["mine"])} and len(events) == 4
    assert [p["id"] for p in queries.filters(direct, carol)["projects"]] == [str(world["mine"])]
    assert {str(d["project_id"]) for d in queries.dead_letters(direct, carol)} == {str(world["mine"])}
    theirs = db.execute("select metadata ->> 'correlation_id' as c from events "
                        "where metadata ->> 'project_id' = %s", (str(world["theirs"]),)).fetchone()["c"]
    assert queries.chain(direct, carol, UUID(theirs)) == {"events": [], "deliveries": []}
    # Asking for another tenant's project by id answers nothing, not an error.
    assert queries.list_events(direct, carol, queries.EventFilter(project_id=str(world["theirs"]))) == []
    stats = health.agent_health(direct, carol, 3600)["stats"]
    assert sum(s["dead"] for s in stats) == 1, "the dead letter of carol's project, not bob's"
    everyone = queries.list_events(direct, OPERATOR, queries.EventFilter())
    assert projects_of(everyone) == {str(world["mine"]), str(world["theirs"])}
    assert sum(s["dead"] for s in health.agent_health(direct, OPERATOR, 3600)["stats"]) == 2


def test_a_member_on_the_supabase_path_sees_none_of_another_projects_events(
        supa: SupabaseReads, direct: PsycopgReads, rest: PostgrestOverDatabase, world: dict[str, UUID]) -> None:
    carol = member(world["carol"])
    events = queries.list_events(supa, carol, queries.EventFilter())
    assert projects_of(events) == {str(world["mine"])} and len(events) == 4
    assert events == queries.list_events(direct, carol, queries.EventFilter()), "one SQL, the same answer"
    assert queries.list_events(supa, carol, queries.EventFilter(project_id=str(world["theirs"]))) == []
    assert [p["id"] for p in queries.filters(supa, carol)["projects"]] == [str(world["mine"])]
    assert {c["function"] for c in rest.calls} == {"dashboard_events", "dashboard_filters"}
    for call in rest.calls:  # the member's own token every time, never the service key
        assert call["bearer"] == carol.access_token and call["role"] == "authenticated"
        assert call["sub"] == str(world["carol"]) and call["apikey"] == ANON_KEY


def test_an_operator_on_the_supabase_path_reads_with_the_service_role_key(
        supa: SupabaseReads, rest: PostgrestOverDatabase, world: dict[str, UUID]) -> None:
    events = queries.list_events(supa, OPERATOR, queries.EventFilter())
    assert projects_of(events) == {str(world["mine"]), str(world["theirs"])}
    assert rest.calls[-1]["bearer"] == SERVICE_ROLE_KEY and rest.calls[-1]["role"] == "service_role"
    with pytest.raises(PermissionError, match="SUPABASE_SERVICE_ROLE_KEY"):
        queries.list_events(SupabaseReads(URL, ANON_KEY), OPERATOR, queries.EventFilter())


def test_the_events_page_paginates_by_keyset_on_both_paths(
        supa: SupabaseReads, direct: PsycopgReads, world: dict[str, UUID], seed: Seed) -> None:
    for n in range(5):
        seed.post(world["mine"], f"more {n}")
    alice = member(world["alice"])
    for reads in (supa, direct):
        pages: list[list[dict[str, Any]]] = []
        before = None
        while True:
            page = queries.list_events(reads, alice, queries.EventFilter(), before=before, limit=4)
            if not page:
                break
            pages.append(page)
            before = (page[-1]["created_at"], UUID(page[-1]["id"]))
        rows = [r for page in pages for r in page]
        assert [len(p) for p in pages] == [4, 4, 1]
        assert len({r["id"] for r in rows}) == 9, "no event twice, none left out"
        keys = [(r["created_at"], r["id"]) for r in rows]
        assert keys == sorted(keys, reverse=True), "newest first across pages"
        assert projects_of(rows) == {str(world["mine"])}
    typed = queries.list_events(supa, alice, queries.EventFilter(types=["feedback.created"]), limit=50)
    assert {r["type"] for r in typed} == {"feedback.created"} and len(typed) == 9


def test_replay_on_the_supabase_path_is_for_owners_and_admins(
        supa: SupabaseReads, rest: PostgrestOverDatabase, world: dict[str, UUID], db: psycopg.Connection) -> None:
    dead = kill(db, world["mine"])
    carol, alice = member(world["carol"]), member(world["alice"])
    with pytest.raises(PermissionError, match="owners and admins"):
        queries.replay(supa, carol, project_id=str(world["mine"]))
    assert rest.calls[-1]["bearer"] == carol.access_token
    assert db.execute("select status from event_deliveries where id = %s", (dead,)).fetchone()["status"] == "dead"
    with pytest.raises(PermissionError, match="owners and admins"):
        queries.replay(supa, alice, project_id=str(world["theirs"]))
    assert queries.replay(supa, alice, project_id=str(world["mine"]), agent="sentiment") == 1
    assert db.execute("select status from event_deliveries where id = %s", (dead,)).fetchone()["status"] == "pending"
    (log,) = queries.replay_log(supa, alice)
    assert log["actor"] == str(world["alice"]) and log["replayed"] == 1
    assert queries.replay_log(supa, member(world["bob"])) == []


def test_a_token_about_to_expire_is_refreshed_once(db_url: str, world: dict[str, UUID], no_proxy: None) -> None:
    from functions.dashboard.auth import supabase_sign_in
    from tests.fakes.supabase_rest import FakeSupabase

    with FakeSupabase(db_url) as fake:
        fake.account("carol@example.com", "pw", world["carol"])
        carol = supabase_sign_in(fake.url, ANON_KEY, "carol@example.com", "pw", frozenset())
        assert carol.access_token and carol.refresh_token and not carol.operator
        reads = SupabaseReads(fake.url, ANON_KEY)
        try:
            stale = replace(carol, expires_at=time.time() + 5)  # inside the refresh margin
            first = queries.list_events(reads, stale, queries.EventFilter())
            again = queries.list_events(reads, stale, queries.EventFilter())
        finally:
            reads.close()
        refreshes = [r for r in fake.requests if r.path == "/auth/v1/token" and "refresh_token" in (r.json or {})]
        elsewhere = SupabaseReads(fake.url, ANON_KEY)  # another instance: the refresh token was rotated
        try:
            with pytest.raises(SessionExpired, match="sign in again"):
                queries.list_events(elsewhere, stale, queries.EventFilter())
        finally:
            elsewhere.close()
        bearers = [c["bearer"] for c in fake.rest.calls]
    assert projects_of(first) == projects_of(again) == {str(world["mine"])}
    assert len(refreshes) == 1, "refreshed once, then the new session is reused"
    assert bearers[0] == bearers[1] != carol.access_token


def test_ping_answers_on_a_live_database_and_raises_without_one(direct: PsycopgReads) -> None:
    direct.ping()
    from signalsloop.local.stack import free_port

    gone = PsycopgReads(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1", max_size=1)
    try:
        started = time.monotonic()
        with pytest.raises(Exception, match="couldn't get a connection"):
            gone.ping(timeout_s=1.0)
        assert time.monotonic() - started < 10, "a dead database is reported within seconds"
    finally:
        gone.close()


@pytest.mark.parametrize("service_role_key", [None, SERVICE_ROLE_KEY])
def test_ping_on_the_supabase_path_is_a_round_trip_to_the_database(db_url: str, service_role_key: str | None) -> None:
    """With the anon key alone the database refuses the probe (42501, 401):
    it answered. With the service-role key the probe runs."""
    fake = PostgrestOverDatabase(db_url)
    with respx.mock(assert_all_mocked=True) as api:
        api.route(host="abc.supabase.co").mock(side_effect=fake.respx_side_effect)
        reads = SupabaseReads(URL, ANON_KEY, service_role_key)
        try:
            reads.ping()
        finally:
            reads.close()
    assert [(c["function"], c["role"]) for c in fake.calls] == [
        ("dashboard_since", "service_role" if service_role_key else "anon")]


def test_ping_on_the_supabase_path_fails_when_postgrest_cannot_reach_the_database() -> None:
    from shared.errors import StoreError
    from signalsloop.local.stack import free_port

    fake = PostgrestOverDatabase(f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1")
    with respx.mock(assert_all_mocked=True) as api:
        api.route(host="abc.supabase.co").mock(side_effect=fake.respx_side_effect)
        reads = SupabaseReads(URL, ANON_KEY)
        try:
            with pytest.raises(StoreError, match="PostgREST answered 503 PGRST001") as caught:
                reads.ping()
        finally:
            reads.close()
    assert caught.value.is_retriable


@pytest.mark.parametrize(("status", "body", "named"), [
    (404, {"code": "PGRST202", "message": "Could not find the function"}, "404 PGRST202"),
    (404, {}, "404 (no code)"),  # not PostgREST's answer: a wrong URL, a proxy in front
    (502, None, "502 (no code)"),
    (403, {"code": "PGRST301", "message": "JWT invalid"}, "403 PGRST301"),
])
def test_ping_on_the_supabase_path_names_what_is_wrong(status: int, body: Any, named: str) -> None:
    from shared.errors import StoreError

    with respx.mock(assert_all_mocked=True) as api:
        probe = api.post(f"{URL}/rest/v1/rpc/dashboard_since").respond(
            status, **({"json": body} if body is not None else {"text": "<html>Bad gateway</html>"}))
        reads = SupabaseReads(URL, ANON_KEY)
        try:
            with pytest.raises(StoreError, match=re.escape(f"PostgREST answered {named}")):
                reads.ping()
        finally:
            reads.close()
    assert probe.calls.last.request.headers["apikey"] == ANON_KEY
