"""Bad per-project settings fail that project's deliveries permanently, with
the reason, and never hold up other projects (real database, real agents)."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from shared.events import EventType
from tests.functions.conftest import Pipeline
from tests.helpers import Seed


def test_a_bad_settings_project_leaves_others_flowing(pipeline: Pipeline, seed: Seed) -> None:
    seed.configure(circuit_failure_threshold=2)
    bad = seed.project()
    # Written past the database's own check (as an older release could have).
    seed.conn.execute("set session_replication_role = replica")
    seed.conn.execute("update projects set settings = %s where id = %s", (Jsonb({"duplicate_threshold": "abc"}), bad))
    seed.conn.execute("set session_replication_role = origin")
    good = seed.project()
    for n in range(3):
        seed.post(bad, f"Export to CSV please {n}")
    seed.post(good, "Dark mode please")
    replies = {str(r["event_id"]): r for r in pipeline.run("duplicate", EventType.FEEDBACK_CREATED)}
    deliveries = {d["project_id"]: d for d in seed.deliveries(agent="duplicate")}
    assert deliveries[good]["status"] == "succeeded"
    dead = [d for d in seed.deliveries(agent="duplicate") if d["project_id"] == bad]
    assert {d["status"] for d in dead} == {"dead"} and all(d["attempts"] == 1 for d in dead)
    assert all("duplicate_threshold" in d["last_error"] for d in dead)
    assert {r["code"] for r in replies.values()} == {200, 422}
    state = seed.conn.execute("select circuit_state, consecutive_failures from agents where name = 'duplicate'")
    assert state.fetchone() == {"circuit_state": "closed", "consecutive_failures": 0}
