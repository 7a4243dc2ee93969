"""The ``signalsloop`` command line end to end: arguments in, a real database
changed or read, text and exit codes out."""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from shared.settings import load_settings
from signalsloop.cli import main
from tests.helpers import Seed


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")
    load_settings.cache_clear()
    yield db_url
    load_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def publish(capsys: pytest.CaptureFixture[str], project: UUID, type_: str = "feedback.created",
            payload: str = '{"title": "Dark mode"}') -> UUID:
    """An injected event about a post that does not exist (--force: these tests watch the ledger)."""
    code, out, err = run(capsys, "events", "publish", type_, "--project", str(project), "--payload", payload,
                         "--force")
    assert code == 0, err
    return UUID(out.strip())


def test_publish_creates_the_event_and_its_deliveries(env: str, seed: Seed, capsys: Any) -> None:
    project = seed.project()
    event_id = publish(capsys, project)
    [event] = seed.events()
    assert event["id"] == event_id and event["payload"] == {"title": "Dark mode"}
    assert event["metadata"]["producer"] == "cli" and event["metadata"]["correlation_id"] == str(event_id)
    assert {d["agent"] for d in seed.deliveries(event_id=event_id)} == {"sentiment", "duplicate", "notify",
                                                                       "competitive", "engagement"}


def test_publish_errors_are_one_red_line_and_exit_2(env: str, seed: Seed, capsys: Any) -> None:
    project = str(seed.project())
    code, out, err = run(capsys, "events", "publish", "feedback.created", "--project", project, "--payload", "{x")
    assert code == 2 and out == ""
    assert err.startswith("error: --payload is not valid JSON") and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "events", "publish", "made.up", "--project", project)
    assert code == 2 and "unknown event type 'made.up'" in err and "--force" in err
    code, _, err = run(capsys, "events", "publish", "feedback.created", "--project", "nope")
    assert code == 2 and "project id 'nope' is not a valid UUID" in err
    assert seed.events() == []
    code, _, _ = run(capsys, "events", "publish", "made.up", "--project", project, "--force")
    assert code == 0 and [e["type"] for e in seed.events()] == ["made.up"]


def test_chain_prints_the_tree_and_errors_for_an_unknown_id(env: str, seed: Seed, capsys: Any) -> None:
    event_id = publish(capsys, seed.project())
    code, out, err = run(capsys, "events", "chain", str(event_id))
    assert code == 0, err
    assert f"chain {event_id}" in out and "feedback.created" in out and "by cli" in out
    assert "sentiment: pending, attempts 0/5" in out and "duplicate: pending" in out
    code, out, err = run(capsys, "events", "chain", str(uuid4()))
    assert code == 2 and out == "" and "no event has correlation id" in err


def test_replay_dead_brings_dead_deliveries_back(env: str, seed: Seed, db: psycopg.Connection[Any],
                                                 capsys: Any) -> None:
    event_id = publish(capsys, seed.project())
    claim = db.execute("select * from claim_delivery(%s, 'sentiment')", (event_id,)).fetchone()
    assert claim is not None
    db.execute("select fail_delivery(%s, %s, 'boom', p_retriable => false)",
               (claim["delivery_id"], claim["claim_token"]))
    assert seed.deliveries(agent="sentiment")[0]["status"] == "dead"
    code, out, err = run(capsys, "replay", "--dead")
    assert code == 0, err
    assert out.strip() == "replayed 1 delivery"
    assert seed.deliveries(agent="sentiment")[0]["status"] == "pending"


@pytest.mark.parametrize("project", ["", "  "])
def test_an_empty_project_is_refused_not_read_as_every_project(env: str, seed: Seed, db: psycopg.Connection[Any],
                                                               capsys: Any, project: str) -> None:
    """``replay --dead --project "$PROJECT"`` with the variable unset replayed
    every project's dead letters."""
    event_id = publish(capsys, seed.project())
    claim = db.execute("select * from claim_delivery(%s, 'sentiment')", (event_id,)).fetchone()
    assert claim is not None
    db.execute("select fail_delivery(%s, %s, 'boom', p_retriable => false)",
               (claim["delivery_id"], claim["claim_token"]))
    code, out, err = run(capsys, "replay", "--dead", "--project", project)
    assert code == 2 and out == ""
    assert "error: the value of project is empty: leave the option out instead" in err
    assert seed.deliveries(agent="sentiment")[0]["status"] == "dead"


def test_replay_errors(env: str, seed: Seed, capsys: Any) -> None:
    code, _, err = run(capsys, "replay")
    assert code == 2
    assert "error: replay needs at least one filter: --event, --dead, --type, --agent, --project, --from, --to" in err
    code, _, err = run(capsys, "replay", "--event", str(uuid4()))
    assert code == 2 and "unknown event" in err
    code, _, err = run(capsys, "replay", "--type", "feedback.created", "--from", "yesterday-ish")
    assert code == 2 and "neither an ISO time" in err


def test_agents_json_reports_health(env: str, seed: Seed, db: psycopg.Connection[Any], capsys: Any) -> None:
    project = seed.project()
    ids = [publish(capsys, project) for _ in range(2)]
    for event_id, ms in zip(ids, (40, 80), strict=True):
        claim = db.execute("select * from claim_delivery(%s, 'sentiment')", (event_id,)).fetchone()
        assert claim is not None
        db.execute("select complete_delivery(%s, %s)", (claim["delivery_id"], claim["claim_token"]))
        db.execute("update delivery_attempts set finished_at = started_at + make_interval(secs => %s) "
                   "where claim_token = %s", (ms / 1000, claim["claim_token"]))
    code, out, err = run(capsys, "agents", "--json")
    assert code == 0, err
    health = {r["agent"]: r for r in json.loads(out)}
    assert health["sentiment"]["succeeded"] == 2 and health["sentiment"]["success_rate"] == 1.0
    assert health["sentiment"]["p50_ms"] == pytest.approx(60, abs=0.5)
    assert health["duplicate"]["pending"] == 2 and health["duplicate"]["dead"] == 0
    code, out, _ = run(capsys, "agents", "--since", "1h")
    assert code == 0 and "sentiment" in out and "100%" in out and "closed" in out


def test_tail_once_filters_by_type(env: str, seed: Seed, capsys: Any) -> None:
    project = seed.project()
    created = publish(capsys, project)
    voted = publish(capsys, project, "feedback.voted", '{"delta": 1}')
    code, out, err = run(capsys, "events", "tail", "--once", "--type", "feedback.voted", "--since", "10m")
    assert code == 0, err
    assert str(voted) in out and str(created) not in out
    [line] = out.strip().splitlines()
    assert "feedback.voted" in line and "cli" in line and '{"delta": 1}' in line and "d0" in line
    code, out, _ = run(capsys, "events", "tail", "--limit", "2", "--project", str(project))
    assert code == 0 and len(out.strip().splitlines()) == 2


def test_a_bad_database_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/x")
    load_settings.cache_clear()
    try:
        code, out, err = run(capsys, "agents")
    finally:
        load_settings.cache_clear()
    assert code == 2 and out == ""
    assert err.startswith("error: cannot connect to DATABASE_URL")


def test_migrate_reports_an_up_to_date_database(env: str, capsys: Any) -> None:
    code, out, err = run(capsys, "db", "migrate")
    assert code == 0, err
    assert "up to date" in out


def test_placeholders_dispatch_to_their_modules(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    seen: list[argparse.Namespace] = []

    def bench_main(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    fake = types.ModuleType("signalsloop.benchmarks.bench")
    fake.main = bench_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "signalsloop.benchmarks.bench", fake)
    assert main(["bench", "--events", "12", "--json"]) == 0
    assert seen[0].events == 12 and seen[0].json is True
    assert main(["--help"]) == 0
    assert main(["relay", "--concurrency", "many"]) == 2, "argparse usage errors exit 2 without raising"
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ("replay", "--from", "99999999999d"),
    ("replay", "--to", "99999999999999999999w"),
    ("events", "tail", "--limit", "-5"),
    ("events", "tail", "--limit", "0"),
    ("events", "tail", "--once", "--interval", "nan"),
    ("events", "publish", "feedback.voted", "--project", "{project}", "--payload", '{"a": NaN}'),
    ("events", "publish", "feedback.voted", "--project", "{project}", "--payload", '{"a": -Infinity}'),
    ("events", "publish", "feedback.voted", "--project", "{project}", "--payload", '{"a": 1e999}'),  # was null
    ("events", "publish", "feedback.voted", "--project", "{project}", "--payload", "[" * 50_000 + "]" * 50_000),
    ("events", "publish", "feedback.created", "--project", "{project}"),
    ("events", "publish", "feedback.created", "--project", "{project}", "--aggregate-id", "{other_post}"),
    # Found by a fuzz of the CLI: each of these ended in a traceback ("error: unexpected ...", exit 1),
    # and clock tick published its tick before it failed.
    ("clock", "tick", "--at", "0001-01-01T00:00:00+05:00"),
    ("clock", "tick", "--at", "9999-12-31T23:59:59-05:00"),
    ("events", "export", "--before", "9999-12-31T23:59:59-05:00"),
    ("events", "tail", "--since", "0001-01-01"),
    ("events", "publish", "feedback.voted", "--project", "{project}", "--payload", '{"n": 1' + "0" * 4300 + "}"),
    ("events", "publish", "feedback.voted", "--project", "{project}", "--payload",
     '{"a": ' + "[" * 900 + "]" * 900 + "}"),
    ("notifications", "report", "--since", "99999999d"),
    ("db", "usage", "--limit-mb", "nan"),
    ("db", "usage", "--limit-mb", "inf"),
    ("db", "prune", "--batch", "2147483648"),
    ("feedback", "post", "--sample", "99999999999999999999"),
    ("events", "export", "--before", "0s", "--out", "/nonexistent-folder/x.jsonl.gz"),
    ("events", "export", "--before", "0s", "--out", "/tmp"),
    ("doctor", "--timeout", "nan"),
    ("doctor", "--window", "2147483648"),
    ("rollout", "set", "\udcff", "shadow"),  # a byte that is not UTF-8, as Python keeps it in argv
    ("feedback", "post", "ok", "--body", "\udcff"),
    # An empty value (an unset shell variable) was read as the option left out.
    ("events", "tail", "--once", "--project", ""),
    ("replay", "--dead", "--agent", ""),
    ("replay", "--type", "feedback.created", "--from", " "),
    ("clock", "tick", "--project", ""),
    ("rollout", "rollback", ""),
    ("events", "publish", "feedback.voted", "--project", "{project}", "--aggregate-id", ""),
    ("feedback", "post", ""),
])
def test_bad_arguments_are_one_error_line_and_exit_2(env: str, seed: Seed, capsys: Any,
                                                     argv: tuple[str, ...]) -> None:
    project, other = seed.project(), seed.project()
    values = {"project": str(project), "other_post": str(seed.post(other))}
    before = len(seed.events())
    code, out, err = run(capsys, *(values.get(a.strip("{}"), a) for a in argv))
    assert code == 2 and out == "", err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert len(seed.events()) == before, "nothing was published"


def test_publishing_feedback_for_an_existing_post_works(env: str, seed: Seed, capsys: Any) -> None:
    project = seed.project()
    post = seed.post(project)
    code, _, err = run(capsys, "events", "publish", "feedback.voted", "--project", str(project),
                         "--aggregate-id", str(post), "--payload", '{"delta": 1}')
    assert code == 0, err
    assert seed.events("feedback.voted")[0]["aggregate_id"] == post


def test_agents_shows_where_the_vote_rate_limit_bit(env: str, seed: Seed, db: psycopg.Connection[Any],
                                                   capsys: Any) -> None:
    member = seed.user()
    project = seed.project(owner=member)
    post = seed.post(project)
    db.execute("update backbone_config set vote_events_per_minute = 1")
    with db.transaction():
        for _ in range(2):
            db.execute("insert into votes (post_id, user_id) values (%s, %s)", (post, member))
            db.execute("delete from votes where post_id = %s and user_id = %s", (post, member))
    code, out, err = run(capsys, "agents")
    assert code == 0, err
    assert f"rate limit: 3 feedback.voted events held back for user {member} in project {project}" in out


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Any) -> None:
    """``signalsloop analyze sentiment < big.jsonl | head -1``: the pipe closes
    under the writer, which used to end in a BrokenPipeError traceback."""
    import subprocess

    source = tmp_path / "big.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": "great app, thanks"}) + "\n" for i in range(20_000)))
    with source.open("rb") as stdin:
        proc = subprocess.Popen([sys.executable, "-m", "signalsloop.cli", "analyze", "sentiment"],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["id"] == 0
        proc.stdout.close()  # what `head -1` does after its line
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 141
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


def test_a_reader_that_goes_away_ends_a_rich_printed_command_with_141(env: str, seed: Seed) -> None:
    """rich exits 1 when its reader goes away (``events tail | head -1``),
    which a script reads as a failure; the CLI now exits 141 there too."""
    import os
    import subprocess

    project = seed.project()
    seed.conn.execute("insert into posts (project_id, title) select %s, 'post ' || g from generate_series(1, 1500) g",
                      (project,))
    proc = subprocess.Popen([sys.executable, "-m", "signalsloop.cli", "events", "tail", "--once", "--since", "1d"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    assert proc.stdout is not None and proc.stderr is not None
    assert "feedback.created" in proc.stdout.readline().decode()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert b"Traceback" not in err and b"error" not in err


@pytest.mark.parametrize(("argv", "says"), [
    (("relay", "--concurrency", "-1"), "--concurrency must be between 1 and 1000"),
    (("relay", "--sweep-interval", "nan"), "--sweep-interval must be between"),
    (("relay", "--sweep-interval", "0"), "--sweep-interval must be between"),
])
def test_relay_arguments_are_checked_before_it_starts(env: str, capsys: Any, argv: tuple[str, ...],
                                                      says: str) -> None:
    """--concurrency -1 ran until the first ring (then a ValueError from the
    pool); a sweep interval of 0 or NaN spun or never swept."""
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and says in err, err
