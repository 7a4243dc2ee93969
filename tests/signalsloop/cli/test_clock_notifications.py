"""``signalsloop clock tick`` and ``signalsloop notifications report`` on a real
database: arguments in, ticks published or numbers counted, exit codes out."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from shared.publish import clock_tick_id
from tests.helpers import Seed
from tests.signalsloop.cli.test_cli import env, run  # noqa: F401 (env is a fixture)


@pytest.mark.usefixtures("env")
def test_clock_tick_at_a_time_publishes_once_per_project(seed: Seed, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = seed.project(), seed.project()
    code, out, _ = run(capsys, "clock", "tick", "--at", "2026-03-01T10:00:00Z")
    assert code == 0 and "published 2 ticks" in out
    code, out, _ = run(capsys, "clock", "tick", "--at", "2026-03-01T10:00:00Z", "--project", str(a))
    assert code == 0 and "published 0 ticks (already published)" in out
    ids = {r["id"] for r in seed.events("clock.tick")}
    from datetime import datetime

    at = datetime.fromisoformat("2026-03-01T10:00:00+00:00")
    assert ids == {clock_tick_id(at, a), clock_tick_id(at, b)}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("clock", "tick", "--at", "yesterday-ish"), "neither an ISO time"),
        (("clock", "tick", "--project", "nope"), "not a valid UUID"),
        (("clock", "tick", "--project", str(UUID(int=7))), "unknown project"),
        (("notifications", "report", "--since", "forever"), "not understood"),
    ],
)
@pytest.mark.usefixtures("env")
def test_bad_arguments_are_one_error_line_and_exit_2(seed: Seed, capsys: pytest.CaptureFixture[str],
                                                     argv: tuple[str, ...], says: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error:") and says in err and len(err.strip().splitlines()) == 1


def note(seed: Seed, project: UUID, status: str, reason: str | None = None, key: str | None = None,
         age: str = "1 hour") -> Any:
    row = seed.conn.execute(
        "insert into notifications (project_id, dedupe_key, text, status, reason, created_at) "
        "values (%s, %s, 'x', %s, %s, now() - %s::interval) returning id",
        (project, key or f"k-{uuid4()}", status, reason, age)).fetchone()
    return row["id"] if isinstance(row, dict) else row[0]


def rate(seed: Seed, notification: Any, user: str, verdict: str) -> None:
    seed.conn.execute("select record_notification_feedback(%s, %s, %s)", (notification, user, verdict))


@pytest.mark.usefixtures("env")
def test_the_report_counts_outcomes_reasons_and_the_useful_share(seed: Seed,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project, other = seed.project(), seed.project()
    sent = [note(seed, project, "sent") for _ in range(3)]
    note(seed, project, "sent", key=f"digest:{project}:2026-03-01T10:00:00Z:notify")
    note(seed, project, "digested")
    note(seed, project, "rate_limited", "rate_limit")
    for reason in ("noise", "noise", "duplicate"):
        note(seed, project, "suppressed", reason)
    note(seed, project, "sent", age="30 days")  # outside the window
    note(seed, other, "sent")
    rate(seed, sent[0], "U1", "useful")
    rate(seed, sent[0], "U2", "useful")
    rate(seed, sent[1], "U1", "useful")
    rate(seed, sent[2], "U1", "not_useful")

    code, out, _ = run(capsys, "notifications", "report", "--since", "7d", "--project", str(project), "--json")

    assert code == 0
    data = json.loads(out)
    assert data["outcomes"] == {"sent": 4, "digested": 1, "rate_limited": 1, "suppressed": 3}
    assert data["suppressed_by_reason"] == {"noise": 2, "duplicate": 1}
    assert data["digests_sent"] == 1 and data["total"] == 9
    assert data["feedback"] == {"useful": 3, "not_useful": 1, "messages_rated": 3, "useful_share": 0.75}
    everyone = json.loads(run(capsys, "notifications", "report", "--json")[1])
    assert everyone["outcomes"]["sent"] == 5 and everyone["project"] is None
    code, out, _ = run(capsys, "notifications", "report", "--since", "2h")
    assert code == 0 and "suppressed: noise" in out and "75%" in out and "digests sent" in out
