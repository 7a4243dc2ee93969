"""The plan's whole cutover on the real local stack, through the CLI commands
docs/cutover.md gives: shadow beside the legacy path, compare, live 25 -> 50
-> 75 -> 100 %, off and back, rollback during a burst, history. Real
PostgreSQL, the relay, one functions-framework server per agent, the offline
analyzer and a fake Slack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from shared.settings import load_settings
from signalsloop.benchmarks.bench import DUPLICATED_SQL
from signalsloop.cli import main
from signalsloop.local.stack import Stack
from signalsloop.operations.legacy import MODEL as LEGACY_MODEL
from tests.fakes.slack_server import FakeSlackServer
from tests.signalsloop import stack_helpers as h


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer() as server:
        yield server


@pytest.fixture(scope="module")
def stack(pg_server: str, slack: FakeSlackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with h.running_stack(pg_server, slack, tmp_path_factory.mktemp("cutover-logs")) as running:
        yield running


class Cli:
    """``signalsloop ...`` in this process, against the stack's database."""

    def __init__(self, capsys: pytest.CaptureFixture[str], stack: Stack) -> None:
        self.capsys = capsys
        self.stack = stack

    def __call__(self, *argv: str) -> str:
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        assert code == 0, f"signalsloop {' '.join(argv)}: exit {code}: {err}"
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self(*argv, "--json"))


@pytest.fixture
def cli(stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    assert stack.database_url
    monkeypatch.setenv("DATABASE_URL", stack.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    load_settings.cache_clear()
    yield Cli(capsys, stack)
    load_settings.cache_clear()


def status_of(cli: Cli, agent: str) -> dict[str, Any]:
    return next(r for r in cli.json("rollout", "status") if r["agent"] == agent)


def post(cli: Cli, project: UUID, n: int) -> list[UUID]:
    posted = cli.json("feedback", "post", "--sample", str(n), "--project", str(project))
    assert posted["project_id"] == str(project) and len(posted["post_ids"]) == n
    return [UUID(i) for i in posted["post_ids"]]


def split(url: str, posts: list[UUID], percent: int) -> set[UUID]:
    """The items rollout_bucket puts on the event-driven path at ``percent``."""
    found = h.rows(url, "select id from unnest(%s::uuid[]) id where public.rollout_bucket('sentiment', id) < %s",
                   (posts, percent))
    return {r["id"] for r in found}


def sentiment_by_model(url: str, posts: list[UUID]) -> dict[UUID, str]:
    found = h.rows(url, "select feedback_id, model from public.sentiment_analysis where feedback_id = any(%s)",
                   (posts,))
    return {r["feedback_id"]: r["model"] for r in found}


def shadowed(url: str, posts: list[UUID]) -> set[UUID]:
    found = h.rows(url, "select aggregate_id from public.shadow_results where agent = 'sentiment' "
                        "and aggregate_id = any(%s)", (posts,))
    return {r["aggregate_id"] for r in found}


def analyzed(url: str, posts: list[UUID]) -> int:
    return int(h.scalar(url, "select count(*) from public.events where type = 'sentiment.analyzed' "
                             "and aggregate_id = any(%s)", (posts,)))


def step_parallel_running(cli: Cli, url: str, project: UUID, slack: FakeSlackServer) -> list[UUID]:
    """Weeks 1-2: sentiment and notify in shadow; nothing live, nothing sent."""
    assert "sentiment: live 100% -> shadow" in cli("rollout", "set", "sentiment", "shadow", "--reason",
                                                     "parallel run")
    assert "notify: live 100% -> shadow" in cli("rollout", "set", "notify", "shadow", "--reason", "parallel run")
    slack_before = len(slack.posted)
    posts = post(cli, project, 12)
    h.settle(cli.stack, timeout=90)
    assert sentiment_by_model(url, posts) == {} and analyzed(url, posts) == 0
    assert shadowed(url, posts) == set(posts)
    assert len(slack.posted) == slack_before, "a shadow notify sends nothing"
    assert h.scalar(url, "select count(*) from public.notifications where project_id = %s", (project,)) == 0
    assert h.scalar(url, "select count(*) from public.shadow_results where agent = 'notify' "
                         "and project_id = %s", (project,)) >= 12
    sentiment = status_of(cli, "sentiment")
    assert (sentiment["mode"], sentiment["live_runs"], sentiment["shadow_runs"]) == ("shadow", 0, 12)
    # the legacy path writes the live table, as it does today
    assert cli("rollout", "legacy", "--since", "1h").strip() == "legacy path wrote sentiment for 12 posts"
    assert set(sentiment_by_model(url, posts).values()) == {LEGACY_MODEL}
    return posts


def step_compare(cli: Cli, url: str, posts: list[UUID]) -> None:
    """Compare reports what the tables say: the shadow label beside the legacy one."""
    pairs = h.rows(url, "select r.aggregate_id, r.decision #>> '{writes,0,rows,0,label}' as shadow, "
                        "s.label as live from public.shadow_results r "
                        "join public.sentiment_analysis s on s.feedback_id = r.aggregate_id "
                        "where r.agent = 'sentiment' and r.aggregate_id = any(%s)", (posts,))
    disagreeing = {str(p["aggregate_id"]) for p in pairs if p["shadow"] != p["live"]}
    report = cli.json("rollout", "compare", "--agent", "sentiment", "--since", "1h", "--limit", "100")
    assert report["compared"] == len(pairs) == 12
    assert report["label_agreement"] == pytest.approx(1 - len(disagreeing) / 12)
    assert {d["item"] for d in report["disagreements"]} == disagreeing
    assert all(d["live_model"] == LEGACY_MODEL and d["title"] for d in report["disagreements"])
    table = cli("rollout", "compare", "--agent", "sentiment", "--since", "1h", "--limit", "1")
    assert f"disagreeing {len(disagreeing)}" in table and "label_agreement" in table


def step_live(cli: Cli, url: str, project: UUID, percent: int, before: int) -> list[UUID]:
    """Week 3-5: ``percent`` of new items on the event-driven path, the rest in
    shadow and written by the legacy path."""
    out = cli("rollout", "set", "sentiment", "live", "--percent", str(percent), "--reason", f"{percent}%")
    assert f"sentiment: {'shadow' if before == 0 else f'live {before}%'} -> live {percent}%" in out
    posts = post(cli, project, 24)
    h.settle(cli.stack, timeout=90)
    live = split(url, posts, percent)
    legacy = cli("rollout", "legacy", "--since", "1h").strip()
    assert legacy == f"legacy path wrote sentiment for {len(posts) - len(live)} posts"
    models = sentiment_by_model(url, posts)
    assert set(models) == set(posts)
    assert {p for p, m in models.items() if m != LEGACY_MODEL} == live, "the event path writes its share only"
    assert shadowed(url, posts) == set(posts) - live and analyzed(url, posts) == len(live)
    return posts


def step_off_and_back(cli: Cli, url: str, project: UUID) -> None:
    """``off``: deliveries wait; back in shadow, they run; nothing lost."""
    assert "sentiment: live 100% -> off" in cli("rollout", "set", "sentiment", "off")
    posts = post(cli, project, 3)
    h.wait_for(lambda: status_of(cli, "sentiment")["waiting"] == 3 and h.scalar(
        url, "select count(*) from public.event_deliveries where agent <> 'sentiment' "
             "and status in ('pending', 'running', 'failed')") == 0, timeout=60, what="the other agents")
    assert shadowed(url, posts) == set() and sentiment_by_model(url, posts) == {}
    assert "sentiment: off -> live 100%" in cli("rollout", "set", "sentiment", "live", "--percent", "100")
    h.settle(cli.stack, timeout=60)
    assert set(sentiment_by_model(url, posts)) == set(posts) and analyzed(url, posts) == 3


def step_rollback_during_a_burst(cli: Cli, url: str, project: UUID) -> None:
    """The flag back while a burst is being worked: nothing lost, nothing twice,
    no live run claimed after the switch."""
    since = h.now(url)
    burst = post(cli, project, 60)
    assert "sentiment: live 100% -> shadow" in cli("rollout", "rollback", "sentiment", "--reason", "bad labels")
    switched = h.scalar(url, "select clock_timestamp()")
    after = post(cli, project, 10)
    h.settle(cli.stack, timeout=120)
    posts = burst + after
    deliveries = h.rows(url, "select d.* from public.event_deliveries d join public.events e on e.id = d.event_id "
                             "where d.agent = 'sentiment' and e.aggregate_id = any(%s)", (posts,))
    assert len(deliveries) == 70 and {(d["status"], d["attempts"]) for d in deliveries} == {("succeeded", 1)}
    live = {d["event_id"] for d in deliveries if not d["shadow"]}
    assert all(d["started_at"] <= switched for d in deliveries if not d["shadow"]), "no live run after the switch"
    by_model = sentiment_by_model(url, posts)
    assert set(after).isdisjoint(by_model) and shadowed(url, after) == set(after), "after the switch: shadow only"
    assert len(by_model) + len(shadowed(url, posts)) == 70, "each item exactly once, live or shadow"
    assert analyzed(url, posts) == len(by_model) == len(live)
    assert h.scalar(url, DUPLICATED_SQL, {"since": since}) == 0
    assert "nothing to roll back: sentiment is not live" in cli("rollout", "rollback", "sentiment")


@pytest.mark.timeout(600)
def test_the_whole_cutover_through_the_documented_commands(stack: Stack, cli: Cli, slack: FakeSlackServer) -> None:
    assert stack.database_url
    url = stack.database_url
    assert status_of(cli, "sentiment")["mode"] == "live"
    project = h.project(url)  # notify_min_importance low: a live notify would send
    first = step_parallel_running(cli, url, project, slack)
    step_compare(cli, url, first)
    before = 0
    for percent in (25, 50, 75, 100):
        step_live(cli, url, project, percent, before)
        before = percent
    step_off_and_back(cli, url, project)
    step_rollback_during_a_burst(cli, url, project)
    history = cli.json("rollout", "history", "sentiment")
    assert [(c["to_mode"], c["to_percent"]) for c in reversed(history)] == [
        ("shadow", 100), ("live", 25), ("live", 50), ("live", 75), ("live", 100), ("off", 100), ("live", 100),
        ("shadow", 100)]
    assert history[0]["reason"] == "bad labels"
    still_live = {r["agent"] for r in cli.json("rollout", "status") if r["mode"] == "live"}
    lines = cli("rollout", "rollback", "--reason", "everything back").splitlines()
    assert {line.split(":")[0] for line in lines} == still_live and still_live
    assert {r["mode"] for r in cli.json("rollout", "status")} == {"shadow"}
    h.settle(stack, timeout=60)
    # every rollout change is an event every agent on '*' hears; none of them left a dead delivery
    unfinished = h.rows(url, "select d.agent, e.type, d.status, left(d.last_error, 200) as error "
                             "from public.event_deliveries d join public.events e on e.id = d.event_id "
                             "where d.status <> 'succeeded'")
    assert unfinished == []
