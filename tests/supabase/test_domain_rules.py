"""Rules of the domain, tried as a hostile member would through Supabase's
roles: project settings, spec approval and links, who changes whose role, no
existence oracle on project ids, and the vote rate limit."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import psycopg
import pytest

from shared.errors import InvalidSettings
from shared.project_settings import check_project_settings
from tests.helpers import Seed
from tests.supabase.test_rls import as_role


@pytest.fixture
def team(seed: Seed, db: psycopg.Connection) -> dict[str, UUID]:
    owner, admin, member, other_admin = (seed.user() for _ in range(4))
    project = seed.project(owner=owner)
    for user, role in ((admin, "admin"), (member, "member"), (other_admin, "admin")):
        db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, %s)",
                   (project, user, role))
    spec = db.execute("insert into specs (project_id, title) values (%s, 'Dark mode') returning id",
                      (project,)).fetchone()["id"]
    return {"owner": owner, "admin": admin, "member": member, "other_admin": other_admin,
            "project": project, "spec": spec}


@pytest.mark.parametrize(("settings", "message"), [
    ({"duplicate_threshold": "abc"}, "duplicate_threshold must be a number in (0, 1]"),
    ({"duplicate_threshold": 1.5}, "duplicate_threshold must be a number in (0, 1]"),
    ({"theme_similarity": 0}, "theme_similarity must be a number in (0, 1]"),
    ({"theme_threshold": 2.5}, "theme_threshold must be a whole number"),
    ({"theme_threshold": -1}, "theme_threshold must be a whole number"),
    ({"slack_rate_per_minute": 0}, "slack_rate_per_minute must be a whole number from 1 to 100000"),
    ({"slack_rate_per_minute": "20"}, "slack_rate_per_minute must be a whole number"),
    ({"notify_min_importance": "loud"}, "notify_min_importance must be one of"),
])
def test_bad_project_settings_are_refused_when_written(db: psycopg.Connection, seed: Seed,
                                                        settings: dict[str, object], message: str) -> None:
    user = seed.user()
    with pytest.raises(psycopg.errors.CheckViolation, match=message.replace("(", r"\(").replace(")", r"\)")), \
            as_role(db, "authenticated", user):
        db.execute("insert into projects (name, slug, owner_id, settings) values ('Evil', 'evil', %s, %s)",
                   (user, json.dumps(settings)))
    project = seed.project(owner=user, theme_threshold=5)
    with pytest.raises(psycopg.errors.CheckViolation, match=message.split(" must")[0]):
        db.execute("update projects set settings = %s where id = %s", (json.dumps(settings), project))
    assert db.execute("select settings from projects where id = %s", (project,)).fetchone()["settings"] == \
        {"theme_threshold": 5}


def test_good_settings_and_unknown_keys_are_accepted(db: psycopg.Connection, seed: Seed) -> None:
    settings = {"duplicate_threshold": 0.9, "theme_similarity": 1, "theme_threshold": 20,
                "slack_rate_per_minute": 100_000, "notify_min_importance": "urgent", "some_new_agent_knob": "x"}
    project = seed.project(**settings)
    assert db.execute("select settings from projects where id = %s", (project,)).fetchone()["settings"] == settings
    assert db.execute("select public.project_settings_problem('{\"theme_threshold\": \"x\"}') as p"
                      ).fetchone()["p"].startswith("projects.settings.theme_threshold")


SAMPLES: list[dict[str, object]] = [
    {"duplicate_threshold": 1}, {"duplicate_threshold": 0.5}, {"duplicate_threshold": 0},
    {"duplicate_threshold": "0.9"},
    {"duplicate_threshold": True}, {"theme_similarity": 1.0001}, {"theme_threshold": 20}, {"theme_threshold": 20.0},
    {"theme_threshold": 100_000}, {"theme_threshold": 100_001}, {"theme_threshold": True},
    {"slack_rate_per_minute": 1}, {"slack_rate_per_minute": 100_000}, {"slack_rate_per_minute": 0},
    {"slack_rate_per_minute": None}, {"notify_min_importance": "low"}, {"notify_min_importance": "High"},
    {"notify_min_importance": 3}, {"brand_color": "teal"},
]


@pytest.mark.parametrize("settings", SAMPLES, ids=json.dumps)
def test_the_database_and_the_agents_agree_on_valid_settings(db: psycopg.Connection,
                                                             settings: dict[str, object]) -> None:
    """A value written past the trigger would otherwise fail deliveries forever."""
    try:
        check_project_settings(settings)
        agents_accept = True
    except InvalidSettings:
        agents_accept = False
    problem = db.execute("select project_settings_problem(%s) as p", (json.dumps(settings),)).fetchone()["p"]
    assert (problem is None) == agents_accept, problem


def test_only_owners_and_admins_approve_complete_and_link_specs(db: psycopg.Connection,
                                                                team: dict[str, UUID]) -> None:
    spec = team["spec"]
    with as_role(db, "authenticated", team["member"]):
        db.execute("update specs set title = 'Dark mode v2', content = '{\"goal\": \"x\"}' where id = %s", (spec,))
    for change in ["status = 'approved'", "status = 'completed'", "linked_url = 'https://example.com/issue/1'"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="owners and admins"), \
                as_role(db, "authenticated", team["member"]):
            db.execute(f"update specs set {change} where id = %s", (spec,))
    # the member's allowed edit is a spec.updated; the refused changes published nothing
    assert db.execute("select count(*) as n from events where type like 'spec.%%' and type <> 'spec.updated'"
                      ).fetchone()["n"] == 0
    with as_role(db, "authenticated", team["admin"]):
        db.execute("update specs set status = 'approved', linked_url = 'https://example.com/issue/1' "
                   "where id = %s", (spec,))
    with as_role(db, "authenticated", team["owner"]):
        db.execute("update specs set status = 'completed' where id = %s", (spec,))
    types = [r["type"] for r in db.execute("select type from events where type like 'spec.%%' "
                                            "and type <> 'spec.updated' order by created_at")]
    assert sorted(types) == ["spec.approved", "spec.completed", "spec.linked"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "http://example.com", "data:text/html,hi",
                                 "https://", "https:// spaced.example", " https://example.com"])
def test_spec_links_must_be_https(db: psycopg.Connection, team: dict[str, UUID], url: str) -> None:
    with pytest.raises(psycopg.errors.CheckViolation), as_role(db, "authenticated", team["owner"]):
        db.execute("update specs set linked_url = %s where id = %s", (url, team["spec"]))
    with pytest.raises(psycopg.errors.CheckViolation):  # the agents' writes too
        db.execute("update specs set linked_url = %s where id = %s", (url, team["spec"]))


def test_admins_manage_members_and_only_owners_manage_admins(db: psycopg.Connection, seed: Seed,
                                                             team: dict[str, UUID]) -> None:
    project, newcomer, another = team["project"], seed.user(), seed.user()
    with as_role(db, "authenticated", team["admin"]):
        db.execute("insert into project_members (project_id, user_id) values (%s, %s)", (project, newcomer))
        assert db.execute("delete from project_members where project_id = %s and user_id = %s",
                          (project, newcomer)).rowcount == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", team["admin"]):
        db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'admin')",
                   (project, another))
    for victim in ("other_admin", "owner"):
        with as_role(db, "authenticated", team["admin"]):
            assert db.execute("delete from project_members where project_id = %s and user_id = %s",
                              (project, team[victim])).rowcount == 0, f"an admin removed the {victim}"
    with as_role(db, "authenticated", team["owner"]):
        db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'admin')",
                   (project, another))
        assert db.execute("delete from project_members where project_id = %s and user_id = %s",
                          (project, team["other_admin"])).rowcount == 1
        assert db.execute("delete from project_members where project_id = %s and user_id = %s",
                          (project, team["owner"])).rowcount == 0, "nobody removes an owner through the API"


def test_creating_a_project_with_a_chosen_id_tells_nothing_about_other_ids(db: psycopg.Connection,
                                                                           seed: Seed) -> None:
    victim, attacker = seed.project(owner=seed.user()), seed.user()
    errors = []
    for project_id in (victim, uuid4()):
        with pytest.raises(psycopg.Error) as caught, as_role(db, "authenticated", attacker):
            db.execute("insert into projects (id, name, slug, owner_id) values (%s, 'X', %s, %s)",
                       (project_id, f"x-{uuid4().hex[:6]}", attacker))
        errors.append((type(caught.value), str(caught.value).replace(str(project_id), "<id>")))
    assert errors[0] == errors[1] and errors[0][0] is psycopg.errors.InsufficientPrivilege


def test_a_member_voting_in_a_loop_makes_a_bounded_number_of_events(db: psycopg.Connection, seed: Seed) -> None:
    member = seed.user()
    project = seed.project(owner=member)
    post = seed.post(project, author=member)
    limit = db.execute("select vote_events_per_minute as n from backbone_config").fetchone()["n"]
    with as_role(db, "authenticated", member):
        for _ in range(limit):  # 2 * limit clicks: vote, unvote, vote, ...
            db.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, member))
            db.execute("delete from votes where post_id = %s and user_id = %s", (post, member))
        db.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, member))
    assert len(seed.events("feedback.voted")) == limit, "events beyond the limit are not published"
    assert db.execute("select vote_count from posts where id = %s", (post,)).fetchone()["vote_count"] == 1
    hits = db.execute("select user_id, event_type, suppressed from rate_limit_hits").fetchall()
    assert hits == [{"user_id": member, "event_type": "feedback.voted", "suppressed": limit + 1}]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(db, "authenticated", member):
        db.execute("select * from rate_limit_hits")
