"""What the dashboard's signed-in members may read and replay (RLS), the
replay log, and the NOTIFY that wakes dashboards."""

from __future__ import annotations

import json
from uuid import UUID

import psycopg
import pytest

from tests.helpers import Seed
from tests.supabase.test_rls import as_role


@pytest.fixture
def world(seed: Seed, db: psycopg.Connection) -> dict[str, UUID]:
    alice, bob, carol = seed.user(), seed.user(), seed.user()
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')", (mine, carol))
    seed.post(mine, "Alice's feedback")
    seed.post(theirs, "Bob's feedback")
    return {"alice": alice, "bob": bob, "carol": carol, "mine": mine, "theirs": theirs}


def kill(db: psycopg.Connection, project: UUID, agent: str = "sentiment") -> int:
    """Claim and fail this project's delivery for ``agent`` permanently: a dead letter."""
    row = db.execute("select d.id, d.event_id from event_deliveries d where d.agent = %s and d.project_id = %s",
                     (agent, project)).fetchone()
    claim = db.execute("select * from claim_delivery(%s, %s, 't')", (row["event_id"], agent)).fetchone()
    db.execute("select fail_delivery(%s, %s, 'boom', false)", (claim["delivery_id"], claim["claim_token"]))
    return int(row["id"])


def test_members_read_their_projects_deliveries_and_attempts_only(db: psycopg.Connection,
                                                                   world: dict[str, UUID]) -> None:
    kill(db, world["mine"])
    kill(db, world["theirs"])
    with as_role(db, "authenticated", world["carol"]):
        projects = {r["project_id"] for r in db.execute("select project_id from event_deliveries")}
        attempts = db.execute("select a.error, d.project_id from delivery_attempts a "
                              "join event_deliveries d on d.id = a.delivery_id").fetchall()
        agents = db.execute("select name, circuit_state from agents").fetchall()
    assert projects == {world["mine"]}
    assert attempts == [{"error": "boom", "project_id": world["mine"]}]
    assert {a["name"] for a in agents} >= {"sentiment", "notify"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["carol"]):
        db.execute("select endpoint_url from agents")


def test_replay_is_for_owners_and_admins_and_is_recorded(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    mine, theirs = kill(db, world["mine"]), kill(db, world["theirs"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["carol"]):
        db.execute("select replay_dead_letters(%s)", (world["mine"],))  # a plain member
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", world["alice"]):
        db.execute("select replay_dead_letters(%s)", (world["theirs"],))  # not her project
    theirs_event = db.execute("select event_id from event_deliveries where id = %s", (theirs,)).fetchone()["event_id"]
    with pytest.raises(psycopg.errors.NoDataFound, match="unknown event"), \
            as_role(db, "authenticated", world["alice"]):  # as for an id that does not exist (no oracle)
        db.execute("select replay_dead_letters(p_event_id => %s)", (theirs_event,))
    with as_role(db, "authenticated", world["alice"]):
        n = db.execute("select replay_dead_letters(%s, p_agent => 'sentiment') as n", (world["mine"],)).fetchone()["n"]
        log = db.execute("select actor_id, actor, filter, replayed, project_id from replay_log").fetchall()
    assert n == 1
    status = {r["id"]: r["status"] for r in db.execute("select id, status from event_deliveries where id = any(%s)",
                                                             ([mine, theirs],))}
    assert status == {mine: "pending", theirs: "dead"}
    assert log == [{"actor_id": world["alice"], "actor": str(world["alice"]), "project_id": world["mine"],
                    "filter": {"agent": "sentiment", "status": "dead"}, "replayed": 1}]
    with as_role(db, "authenticated", world["bob"]):
        assert db.execute("select count(*) as n from replay_log").fetchone()["n"] == 0


def test_an_operator_replays_across_projects(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    kill(db, world["mine"])
    kill(db, world["theirs"])
    n = db.execute("select replay_dead_letters(p_actor => 'ops@example.com') as n").fetchone()["n"]
    assert n == 2
    (log,) = db.execute("select actor, project_id, replayed from replay_log").fetchall()
    assert log["actor"].startswith("ops@example.com as ") and log["project_id"] is None and log["replayed"] == 2


def test_new_events_notify_listening_dashboards(db_url: str, seed: Seed, world: dict[str, UUID]) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen signalsloop_events")
        seed.post(world["mine"], "Wake up")
        (note,) = list(listener.notifies(timeout=5, stop_after=1))
    assert note.channel == "signalsloop_events" and json.loads(note.payload)["n"] == 1


@pytest.mark.parametrize("function", ["dashboard_agent_health", "dashboard_success_metrics"])
@pytest.mark.parametrize("window", [None, -60.0, 0.0, float("nan"), 1e12])
def test_a_window_that_means_nothing_is_refused_naming_it(db: psycopg.Connection, world: dict[str, UUID],
                                                          function: str, window: float | None) -> None:
    """NULL, negative or NaN windows counted nothing and answered zeros; a
    huge one ended in 'interval out of range'."""
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="p_window_s must be more than 0 and at most"), \
            as_role(db, "authenticated", world["alice"]):
        db.execute(f"select public.{function}(%s::double precision)", (window,))


@pytest.mark.parametrize("function", ["dashboard_agent_health", "dashboard_success_metrics"])
def test_a_window_in_range_answers_the_members_figures(db: psycopg.Connection, world: dict[str, UUID],
                                                       function: str) -> None:
    with as_role(db, "authenticated", world["alice"]):
        day = db.execute(f"select public.{function}(86400) as r").fetchone()["r"]
        year = db.execute(f"select public.{function}(31622400) as r").fetchone()["r"]
    assert day == year and isinstance(day, dict) and day, "the same deliveries in a day and in a year"


def test_a_missing_page_size_is_named_in_the_error(db: psycopg.Connection, world: dict[str, UUID]) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"p_limit must be 1 to 500, not null\n"), \
            as_role(db, "authenticated", world["alice"]):
        db.execute("select public.dashboard_events(p_limit => null)")
