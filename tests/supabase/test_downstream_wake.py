"""A ring wakes the agents downstream of the one it rings
(20261202001701_downstream_wake.sql). pg_net is the outside world: the
stand-in's SQL objects, no worker, so requests stay queued as pg_net queues them."""

from __future__ import annotations

from typing import Any

import psycopg

from signalsloop.local import pgnet_standin
from tests.helpers import Seed


def _pg_net(db: psycopg.Connection) -> None:
    pgnet_standin.install(db)
    pgnet_standin.install_vault_secret(db, "vault-secret")
    db.execute("update agents set endpoint_url = 'https://fn.example/' || name")


def _sent(db: psycopg.Connection) -> list[dict[str, Any]]:
    return db.execute("select url, convert_from(body, 'UTF8')::jsonb as body from net.http_request_queue "
                      "order by id").fetchall()


def test_a_ring_of_sentiment_wakes_theme_and_priority_in_the_same_batch(db: psycopg.Connection, seed: Seed) -> None:
    _pg_net(db)
    project = seed.project()
    seed.post(project, "Dark mode please")
    event = db.execute("select id from events where type = 'feedback.created'").fetchone()["id"]
    sent = _sent(db)
    woken = sorted(s["url"].rsplit("/", 1)[1] for s in sent
                   if s["url"].rsplit("/", 1)[1] in ("theme", "priority"))
    assert woken == ["priority", "theme"]
    # the body is the rung delivery's event; neither has a delivery for it
    assert {str(s["body"]["record"]["id"]) for s in sent} == {str(event)}
    wakes = db.execute("select agent, project_id from agent_wakes order by agent").fetchall()
    assert [(w["agent"], w["project_id"]) for w in wakes] == [("priority", project), ("theme", project)]

    db.execute("delete from agent_drainers")  # sentiment is rung again (no ring of it on its way)...
    seed.post(project, "Dark mode, again")  # ...but a wake is on its way: no second one
    assert sum(s["url"].endswith("/sentiment") for s in _sent(db)) == 2
    assert sum(s["url"].endswith("/theme") for s in _sent(db)) == 1

    # a wake covers nothing: theme's own delivery is rung while the wake is on its way
    db.execute("insert into events (type, aggregate_type, aggregate_id, payload, metadata) "
               "values ('sentiment.analyzed', 'feedback', gen_random_uuid(), '{}', "
               "jsonb_build_object('project_id', %s::text, 'producer', 'sentiment'))", (project,))
    [theme] = seed.deliveries(agent="theme")
    assert theme["ring_count"] == 1 and theme["last_request_id"] is not None

    claim = db.execute("select * from claim_delivery(%s, 'theme', 'test')", (event,)).fetchone()
    assert claim["outcome"] == "woken" and claim["project_id"] == project
    assert claim["serialize_by_project"] and claim["drain_budget_ms"] > 0 and claim["delivery_id"] is None
    again = db.execute("select * from claim_delivery(%s, 'theme', 'test')", (event,)).fetchone()
    assert again["outcome"] == "not_subscribed"  # the wake was taken: a replayed body is a 404 again


def test_no_wake_for_a_covered_agent_an_agent_turned_off_or_when_turned_off(db: psycopg.Connection,
                                                                             seed: Seed) -> None:
    _pg_net(db)
    project = seed.project()
    db.execute("insert into agent_drainers (drainer, agent, project_id, until) "
               "values (gen_random_uuid(), 'theme', %s, now() + interval '5 seconds')", (project,))
    seed.agent("priority", mode="off")
    seed.post(project, "Dark mode please")
    assert not [s for s in _sent(db) if s["url"].endswith(("/theme", "/priority"))]

    db.execute("delete from agent_drainers")
    seed.agent("priority", mode="live")
    seed.configure(wake_downstream=False)
    seed.post(project, "Dark mode, again")
    assert not [s for s in _sent(db) if s["url"].endswith(("/theme", "/priority"))]
    assert db.execute("select count(*) as n from agent_wakes").fetchone()["n"] == 0


def test_an_expired_wake_answers_404_and_another_may_be_sent(db: psycopg.Connection, seed: Seed) -> None:
    _pg_net(db)
    project = seed.project()
    seed.post(project, "Dark mode please")
    event = db.execute("select id from events where type = 'feedback.created'").fetchone()["id"]
    db.execute("update agent_wakes set until = now() - interval '1 second'")
    db.execute("delete from agent_drainers")
    claim = db.execute("select * from claim_delivery(%s, 'theme', 'test')", (event,)).fetchone()
    assert claim["outcome"] == "not_subscribed"
    seed.post(project, "Dark mode, again")
    assert sum(s["url"].endswith("/theme") for s in _sent(db)) == 2


def test_without_pg_net_nothing_is_woken(db: psycopg.Connection, seed: Seed) -> None:
    seed.post(seed.project(), "Dark mode please")
    assert db.execute("select count(*) as n from agent_wakes").fetchone()["n"] == 0


def test_an_agent_with_its_own_delivery_of_the_rung_event_is_not_woken(db: psycopg.Connection,
                                                                       seed: Seed) -> None:
    """notify hears sentiment.analyzed itself: a ring of priority (which
    publishes priority.calculated, which notify hears) for such an event
    does not wake notify; notify's own delivery of it is rung as any."""
    _pg_net(db)
    project = seed.project()
    seed.configure(max_drainers=1)
    db.execute("insert into events (type, aggregate_type, aggregate_id, payload, metadata) "
               "values ('sentiment.analyzed', 'feedback', gen_random_uuid(), '{}', "
               "jsonb_build_object('project_id', %s::text, 'producer', 'sentiment'))", (project,))
    [notify] = seed.deliveries(agent="notify")
    assert notify["ring_count"] == 1
    # later the sweep rings priority's delivery again, notify uncovered by then
    db.execute("delete from agent_drainers")
    [priority] = seed.deliveries(agent="priority")
    db.execute("select public.ring_doorbell(array[%s]::bigint[])", (priority["id"],))
    assert db.execute("select count(*) as n from agent_wakes where agent = 'notify'").fetchone()["n"] == 0
