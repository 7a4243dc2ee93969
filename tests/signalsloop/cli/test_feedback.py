"""``signalsloop feedback post`` on a real database: posts inserted as the web
app inserts them (each publishes feedback.created), the local project made
once, bad arguments refused with one line and nothing written."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from tests.helpers import Seed
from tests.signalsloop.cli.test_cli import env, run  # noqa: F401 (env is a fixture)


@pytest.mark.usefixtures("env")
def test_posts_go_to_the_local_project_and_each_publishes_feedback_created(
        seed: Seed, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "feedback", "post", "Export is broken", "--body", "CSV fails", "--json")
    assert code == 0, err
    first = json.loads(out)
    code, out, _ = run(capsys, "feedback", "post", "--sample", "3")
    assert code == 0 and out.startswith("posted 3 feedback items to project ")
    (project,) = seed.conn.execute("select id, slug from projects").fetchall()
    assert str(project["id"]) == first["project_id"] and project["slug"] == "local", "made once, then reused"
    posts = seed.conn.execute("select id, title, body from posts order by created_at, title").fetchall()
    assert len(posts) == 4 and {"title": "Export is broken", "body": "CSV fails"} in \
        [{"title": p["title"], "body": p["body"]} for p in posts]
    created = {e["aggregate_id"] for e in seed.events("feedback.created")}
    assert created == {p["id"] for p in posts} and UUID(first["post_ids"][0]) in created


@pytest.mark.usefixtures("env")
def test_posts_go_to_the_given_project(seed: Seed, capsys: pytest.CaptureFixture[str]) -> None:
    project = seed.project()
    code, out, _ = run(capsys, "feedback", "post", "One", "Two", "--project", str(project))
    assert code == 0 and f"posted 2 feedback items to project {project}" in out
    assert {r["project_id"] for r in seed.conn.execute("select project_id from posts").fetchall()} == {project}


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("feedback", "post"), "nothing to post"),
        (("feedback", "post", "x", "--project", "nope"), "not a valid UUID"),
        (("feedback", "post", "x", "--project", str(UUID(int=7))), "unknown project"),
        (("feedback", "post", "--sample", "-1"), "--sample must be between 0 and 100,000"),
        (("feedback", "post", "ok", "x" * 501), "1-500 characters"),
        (("rollout", "compare", "--agent", "nosuch"), "unknown agent"),
        (("rollout", "history", "--limit", "0"), "--limit must be 1 or more"),
    ],
)
@pytest.mark.usefixtures("env")
def test_bad_arguments_are_one_error_line_and_write_nothing(seed: Seed, capsys: pytest.CaptureFixture[str],
                                                            argv: tuple[str, ...], says: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith("error:") and says in err and len(err.strip().splitlines()) == 1
    assert seed.conn.execute("select count(*) as n from posts").fetchone()["n"] == 0


@pytest.mark.usefixtures("env")
def test_rollout_history_shows_stored_text_as_text(seed: Seed, capsys: pytest.CaptureFixture[str]) -> None:
    """A reason like ``[/b]`` was read as rich markup (MarkupError, exit 1),
    and an ESC sequence in it reached the operator's terminal."""
    assert run(capsys, "rollout", "set", "sentiment", "shadow", "--by", "[bold]eve",
               "--reason", "[/b]\x1b]0;x\x07")[0] == 0
    code, out, err = run(capsys, "rollout", "history")
    assert code == 0, err
    assert "[bold]eve" in out and "[/b]\\x1b]0;x\\x07" in out and "\x1b" not in out


@pytest.mark.usefixtures("env")
def test_rollout_history_lists_the_changes_newest_first(seed: Seed, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "rollout", "set", "sentiment", "shadow", "--by", "ana", "--reason", "parallel run")[0] == 0
    code, out, _ = run(capsys, "rollout", "set", "sentiment", "live", "--percent", "25", "--by", "ana")
    assert code == 0 and out.startswith("sentiment: shadow -> live 25% (event ")
    code, out, _ = run(capsys, "rollout", "history", "sentiment", "--json")
    history = json.loads(out)
    assert [(c["from_mode"], c["to_mode"], c["to_percent"], c["changed_by"]) for c in history] == [
        ("shadow", "live", 25, "ana"), ("live", "shadow", 100, "ana")]
    code, out, _ = run(capsys, "rollout", "history")
    assert code == 0 and "parallel run" in out and "live 25%" in out
    code, out, _ = run(capsys, "rollout", "rollback", "duplicate")
    assert code == 0 and out.startswith("duplicate: live 100% -> shadow (event ")
    code, out, _ = run(capsys, "rollout", "rollback", "duplicate")
    assert code == 0 and out.strip() == "nothing to roll back: duplicate is not live"
