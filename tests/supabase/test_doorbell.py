"""The doorbell's two paths. pg_net is the outside world here: the pg_net
stand-in's SQL objects (no worker runs, so requests stay in
``net.http_request_queue`` as pg_net queues them), and a stand-in
``vault.decrypted_secrets`` holds the secret, as on Supabase."""

from __future__ import annotations

import json
import time

import psycopg

from shared.events import DomainEvent, WebhookPayload
from signalsloop.local import pgnet_standin
from tests.helpers import Seed


def test_with_pg_net_each_delivery_is_posted_as_the_supabase_webhook_body(db: psycopg.Connection, seed: Seed) -> None:
    pgnet_standin.install(db)
    pgnet_standin.install_vault_secret(db, "vault-secret")
    db.execute("update agents set endpoint_url = 'https://fn.example/' || name, timeout_ms = 4000")
    seed.configure(wake_downstream=False)  # wakes: test_downstream_wake.py
    project = seed.project()
    post = seed.post(project, "Dark mode please")
    sent = db.execute("select method, url, convert_from(body, 'UTF8')::jsonb as body, headers, "
                      "timeout_milliseconds as timeout from net.http_request_queue order by id").fetchall()
    assert {s["method"] for s in sent} == {"POST"}
    subscribers = ("competitive", "duplicate", "engagement", "notify", "sentiment")
    assert sorted(s["url"] for s in sent) == [f"https://fn.example/{a}" for a in subscribers]
    event_row = db.execute("select to_jsonb(e) as r from events e").fetchone()["r"]
    for s in sent:
        assert s["body"] == WebhookPayload.for_event(event_row)
        assert s["headers"] == {"Content-Type": "application/json", "Authorization": "Bearer vault-secret"}
        assert s["timeout"] == 4000
    event = DomainEvent.from_record(sent[0]["body"]["record"])
    assert event.aggregate_id == post and event.type == "feedback.created"
    assert db.execute("select count(*) as n from event_deliveries where ring_count = 1").fetchone()["n"] == 5


def test_without_pg_net_the_doorbell_is_a_notify_for_the_relay(db_url: str, seed: Seed) -> None:
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen signalsloop_doorbell")
        seed.post(seed.project())
        heard = [json.loads(n.payload) for n in listener.notifies(timeout=1, stop_after=5)]
    assert sorted(h["agent"] for h in heard) == ["competitive", "duplicate", "engagement", "notify", "sentiment"]
    assert all(isinstance(h["delivery_id"], int) and h["event_id"] for h in heard)


def test_an_agent_turned_off_is_not_rung_and_its_deliveries_wait(db_url: str, seed: Seed) -> None:
    seed.agent("sentiment", mode="off")
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen signalsloop_doorbell")
        seed.post(seed.project())
        time.sleep(0.1)
        heard = [json.loads(n.payload)["agent"] for n in listener.notifies(timeout=0.5, stop_after=5)]
    assert "sentiment" not in heard and len(heard) == 4
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


def test_doorbell_none_records_without_ringing(db_url: str, seed: Seed) -> None:
    seed.configure(doorbell="none")
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute("listen signalsloop_doorbell")
        seed.post(seed.project())
        assert list(listener.notifies(timeout=0.3)) == []
    deliveries = seed.deliveries()
    assert len(deliveries) == 5 and {d["ring_count"] for d in deliveries} == {0}

