"""``signalsloop events export/import``, ``db usage`` and ``db prune`` end to
end against real databases."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.errors import ConfigurationError
from shared.settings import load_settings
from signalsloop.operations.archive import import_events
from tests.conftest import cloned_database
from tests.helpers import Seed
from tests.signalsloop.cli.test_cli import env, run  # noqa: F401 (env is a fixture)

PAYLOADS = [{"title": "Dark mode ☾ «please»", "body": "line\nbreak \"quoted\" \\ back", "n": 1.50},
            {"nested": {"list": [1, 2.25, None, True], "big": 12345678901234567890}, "emoji": "🚀"},
            {}]


@pytest.fixture
def other_url(pg_server: str) -> Iterator[str]:
    """A second, empty migrated database to import into."""
    with cloned_database(pg_server, "o_") as url:
        yield url


def old_events(db: psycopg.Connection, project: UUID) -> list[UUID]:
    ids = []
    for i, payload in enumerate(PAYLOADS):
        eid = uuid4()
        db.execute("insert into events (id, type, aggregate_type, aggregate_id, payload, metadata, created_at) "
                   "values (%s, 'feedback.created', 'feedback', %s, %s, %s, "
                   "now() - make_interval(days => 400 - %s, secs => 0.123456))",
                   (eid, uuid4(), json.dumps(payload), json.dumps({"project_id": str(project), "user_id": None}), i))
        ids.append(eid)
    return ids


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"select count(*) from {table}").fetchone()[0])  # type: ignore[index]


@pytest.mark.usefixtures("env")
def test_export_then_import_round_trips_events_byte_for_byte(db_url: str, other_url: str, db: psycopg.Connection,
                                                            seed: Seed, capsys: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    project = seed.project()
    archived = old_events(db, project)
    seed.post(project, "A recent post stays out of the archive")
    first = tmp_path / "first.jsonl.gz"
    code, _, err = run(capsys, "events", "export", "--before", "300d", "--out", str(first))
    assert code == 0 and "exported 3 events" in err
    lines = gzip.decompress(first.read_bytes()).splitlines()
    assert [UUID(json.loads(line)["id"]) for line in lines] == archived
    assert json.loads(lines[1])["payload"] == PAYLOADS[1], "numbers, unicode and nesting survive"

    monkeypatch.setenv("DATABASE_URL", other_url)
    load_settings.cache_clear()
    code, out, _ = run(capsys, "events", "import", str(first))
    assert code == 0 and "imported 3 events, 0 already present (no fan-out)" in out
    assert count(other_url, "event_deliveries") == 0, "archived events do not ring the agents again"
    second = tmp_path / "second.jsonl.gz"
    assert run(capsys, "events", "export", "--before", "300d", "--out", str(second))[0] == 0
    assert second.read_bytes() == first.read_bytes()
    code, out, _ = run(capsys, "events", "import", str(first))
    assert code == 0 and "imported 0 events, 3 already present" in out

    plain = tmp_path / "plain.jsonl"
    assert run(capsys, "events", "export", "--before", "300d", "--out", str(plain))[0] == 0
    assert plain.read_bytes() == gzip.decompress(first.read_bytes())


@pytest.mark.usefixtures("env")
def test_import_with_fan_out_rings_the_agents(db_url: str, db: psycopg.Connection, seed: Seed, capsys: Any,
                                              tmp_path: Path) -> None:
    project = seed.project()
    ids = old_events(db, project)
    archive = tmp_path / "a.jsonl.gz"
    assert run(capsys, "events", "export", "--before", "1d", "--out", str(archive))[0] == 0
    db.execute("delete from events")
    code, out, _ = run(capsys, "events", "import", str(archive), "--fan-out")
    assert code == 0 and "imported 3 events" in out
    assert {d["event_id"] for d in seed.deliveries(agent="sentiment")} == set(ids)


@pytest.mark.usefixtures("env")
def test_a_bad_archive_is_one_error_line_and_imports_nothing(db_url: str, db: psycopg.Connection, seed: Seed,
                                                             capsys: Any, tmp_path: Path) -> None:
    project = seed.project()
    old_events(db, project)
    good = tmp_path / "good.jsonl"
    assert run(capsys, "events", "export", "--before", "1d", "--out", str(good))[0] == 0
    db.execute("delete from events")
    lines = good.read_text().splitlines()
    cases = {"notjson.jsonl": [lines[0], "{oops"], "missing.jsonl": [lines[0], '{"id": "x"}'],
             "array.jsonl": ["[1, 2]"], "hugeint.jsonl": [lines[0], '{"n": 1' + "0" * 4300 + "}"],
             "deep.jsonl": [lines[0], "[" * 100_000 + "]" * 100_000],
             # the ledger's jsonb takes an array; every agent then dead-lettered the event
             "arraypayload.jsonl": [lines[0], json.dumps(json.loads(lines[1]) | {"payload": [1, 2]})],
             "nullmetadata.jsonl": [lines[0], json.dumps(json.loads(lines[1]) | {"metadata": None})]}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_text("\n".join(content) + "\n")
        code, _, err = run(capsys, "events", "import", str(path))
        assert code == 2 and err.startswith("error: line") and len(err.strip().splitlines()) == 1, (name, err)
        if name in ("arraypayload.jsonl", "nullmetadata.jsonl"):
            assert "line 2: " in err and "must be a JSON object" in err, err
    broken = json.loads(lines[1]) | {"aggregate_id": "not-a-uuid"}
    (tmp_path / "badvalue.jsonl").write_text(lines[0] + "\n" + json.dumps(broken) + "\n")
    code, _, err = run(capsys, "events", "import", str(tmp_path / "badvalue.jsonl"))
    assert code == 2 and "nothing was imported" in err
    code, _, err = run(capsys, "events", "import", str(tmp_path / "absent.jsonl"))
    assert code == 2 and "cannot read" in err
    assert count(db_url, "events") == 0
    code, _, err = run(capsys, "events", "export", "--before", "1d", "--after", "1h")
    assert code == 2 and "--after must be earlier" in err


def test_import_without_permission_to_skip_triggers_says_what_to_do(db: psycopg.Connection, tmp_path: Path) -> None:
    db.execute("begin")
    db.execute("set local role service_role")
    try:
        with pytest.raises(ConfigurationError, match="--fan-out"):
            import_events(db, iter([b"{}"]), fan_out=False)  # type: ignore[arg-type]
    finally:
        db.execute("rollback")


@pytest.mark.usefixtures("env")
def test_db_usage_figures_match_the_catalog(db_url: str, db: psycopg.Connection, seed: Seed, capsys: Any) -> None:
    project = seed.project()
    for i in range(4):
        seed.post(project, f"Feedback {i}")
    db.execute("insert into events (type, aggregate_type, aggregate_id, metadata, created_at) values "
               "('clock.tick', 'clock', %s, %s, now() - interval '2 days')",
               (uuid4(), json.dumps({"project_id": str(project)})))  # counted, but not in the last day
    code, out, err = run(capsys, "db", "usage", "--limit-mb", "100", "--json")
    assert code == 0, err
    rep = json.loads(out)
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        catalog = {r["relname"]: r["bytes"] for r in conn.execute(
            "select relname, pg_total_relation_size(oid) as bytes from pg_class "
            "where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')")}
        db_bytes = conn.execute("select pg_database_size(current_database()) as b").fetchone()["b"]  # type: ignore[index]
        events = conn.execute("select count(*) as n from events").fetchone()["n"]  # type: ignore[index]
    tables = {t["table"]: t for t in rep["tables"]}
    assert {t: v["bytes"] for t, v in tables.items()} == catalog
    assert rep["database_bytes"] == db_bytes and rep["limit_bytes"] == 100 * 1024 * 1024
    assert rep["feedback_items_in_window"] == 4
    assert tables["posts"]["rows"] == 4 and tables["events"]["rows"] == events
    assert tables["events"]["rows_in_window"] == events - 1, "the two-day-old event is outside the window"
    assert tables["events"]["bytes_per_day"] == pytest.approx(catalog["events"] * (events - 1) / events)
    assert tables["events"]["retention_days"] == 365 and tables["event_deliveries"]["retention_days"] == 30
    per_day = sum(t["bytes_per_day"] for t in rep["tables"])
    assert rep["bytes_per_feedback_item"] == round(per_day / 4)
    without = rep["projection"]["without_retention"]
    assert without["30d_bytes"] == round(db_bytes + 30 * per_day)
    with_retention = rep["projection"]["with_retention"]
    assert with_retention["365d_bytes"] < without["365d_bytes"], "ledger tables stop growing at their retention"
    code, out, _ = run(capsys, "db", "usage")
    assert code == 0 and "event_deliveries" in out and "without retention" in out and "limit reached" in out
    code, _, err = run(capsys, "db", "usage", "--limit-mb", "0")
    assert code == 2 and "--limit-mb must be a number above 0" in err


@pytest.mark.usefixtures("env")
def test_db_prune_prints_what_it_removed(db_url: str, db: psycopg.Connection, seed: Seed, capsys: Any) -> None:
    project = seed.project()
    db.execute("insert into events (type, aggregate_type, aggregate_id, metadata, created_at) values "
               "('clock.tick', 'clock', %s, %s, now() - interval '30 days')",
               (uuid4(), json.dumps({"project_id": str(project)})))
    db.execute("update event_deliveries set status = 'succeeded', finished_at = now() - interval '30 days'")
    code, out, _ = run(capsys, "db", "prune", "--batch", "10")
    assert code == 0 and json.loads(out)["tick_events"] == 1
    assert run(capsys, "db", "prune", "--batch", "0")[0] == 2
