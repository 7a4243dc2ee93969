"""The dashboard in a real headless Chromium against the real local stack
(PostgreSQL, relay, every agent function, the dashboard process): sign-in
with the printed URL, live rows, filters, the chain of a spec, replay of a
dead delivery from the page, refusal without a session, tenant isolation.
Screenshots of every page go to build/test-artifacts/dashboard/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from signalsloop.local.browser import INSTALL_HINT, chromium, chromium_path, screenshot
from signalsloop.local.dashboard_process import DashboardProcess
from signalsloop.local.demo import chain_to_spec
from signalsloop.local.scenario import DARK_MODE
from signalsloop.local.stack import Stack
from tests.fakes.slack_server import FakeSlackServer
from tests.signalsloop import stack_helpers as h

pytestmark = [pytest.mark.skipif(chromium_path() is None, reason=INSTALL_HINT), pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def stack(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with FakeSlackServer() as slack, h.fresh_database(pg_server) as url:
        h.configure(url, **h.FAST_CONFIG)
        logs: Path = tmp_path_factory.mktemp("dashboard-logs")
        with Stack(database_url=url, sweep_interval=0.2, log_dir=logs, extra_env=h.stack_env(None, slack)) as s:
            yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def operator(stack: Stack, browser: Any) -> Iterator[Any]:
    """A page signed in as the operator with the URL the dashboard printed."""
    url = stack.start_dashboard()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_url("**/events")
    yield page
    context.close()


def rows_on(page: Any) -> list[str]:
    return [e.get_attribute("data-event-id") for e in page.locator("tr[data-event-id]").all()]


def event_of(url: str, post_id: UUID) -> str:
    return str(h.scalar(url, "select id from events where aggregate_id = %s and type = 'feedback.created'",
                        (post_id,)))


def test_sign_in_live_rows_and_filters(stack: Stack, operator: Any) -> None:
    assert stack.database_url and stack.dashboard
    url = stack.database_url
    project = h.project(url)
    operator.get_by_text("operator", exact=False).first.wait_for()
    [post] = h.post(url, project)
    event_id = event_of(url, post)
    operator.wait_for_selector(f'tr[data-event-id="{event_id}"]', timeout=20000)  # pushed, no reload
    h.settle(stack, timeout=60)
    screenshot(operator, "events")

    types_before = {e.get_attribute("data-type") for e in operator.locator("tr[data-event-id]").all()}
    assert len(types_before) > 1
    operator.locator("[data-filter=types]").click()
    operator.locator(".q-menu .q-item", has_text="sentiment.analyzed").click()
    operator.keyboard.press("Escape")
    operator.wait_for_function("() => [...document.querySelectorAll('tr[data-event-id]')]"
                               ".every(r => r.dataset.type === 'sentiment.analyzed')", timeout=20000)
    assert len(rows_on(operator)) >= 1
    operator.get_by_label("Aggregate id").fill(str(UUID(int=1)))
    operator.wait_for_function("() => document.querySelectorAll('tr[data-event-id]').length === 0", timeout=20000)
    screenshot(operator, "events-filtered")
    operator.goto(stack.dashboard.base_url + "/events")


def test_the_first_response_already_carries_the_rows(stack: Stack, operator: Any) -> None:
    """The page's HTML holds its rows: they must not wait for the scripts to
    load and the websocket to connect (a ui.timer in the frame made NiceGUI
    send the page before its content was built)."""
    assert stack.database_url and stack.dashboard
    [post] = h.post(stack.database_url, h.project(stack.database_url))
    newest = event_of(stack.database_url, post)
    served = operator.context.request.get(stack.dashboard.base_url + "/events")
    assert served.ok
    assert str(newest) in served.text()
    assert "tailwindcss" not in served.text()  # no runtime CSS compiler on the page


def test_the_chain_of_a_spec_shows_its_events_and_deliveries(stack: Stack, operator: Any) -> None:
    assert stack.database_url and stack.dashboard
    url = stack.database_url
    since = h.now(url)
    project = h.project(url, theme_threshold=3)
    with h.connect(url) as conn:
        for item in DARK_MODE[:8]:  # more than the threshold needs, however the themes cluster
            conn.execute("insert into posts (project_id, title, body) values (%s, %s, %s)",
                         (project, item.title, item.body))
    h.settle(stack, timeout=120)
    with h.connect(url) as conn:
        path = chain_to_spec(conn, since)
    assert [p["type"] for p in path] == ["feedback.created", "sentiment.analyzed", "theme.threshold_reached",
                                         "spec.auto_drafted"]
    operator.goto(f"{stack.dashboard.base_url}/chain/{path[0]['id']}")
    for step in path:
        card = operator.locator(f'.q-card[data-event-id="{step["id"]}"]')
        card.wait_for(timeout=20000)
    spec_writer = operator.locator(f'.q-card[data-event-id="{path[2]["id"]}"] [data-agent=spec_writer]')
    assert spec_writer.get_attribute("data-status") == "succeeded"
    assert operator.locator("[data-delivery-id][data-status=succeeded]").count() >= 4
    screenshot(operator, "chain")


def test_a_dead_delivery_replayed_from_the_page_succeeds(stack: Stack, operator: Any) -> None:
    assert stack.database_url and stack.dashboard
    url = stack.database_url
    h.set_agent(url, "priority", mode="off")
    project = h.project(url)
    [post] = h.post(url, project)
    h.wait_for(lambda: h.rows(url, "select 1 from event_deliveries d join events e on e.id = d.event_id "
                                   "where e.aggregate_id = %s and d.agent = 'priority'", (post,)), 30, "priority")
    with h.connect(url) as conn:  # a permanent failure of the agent, as the ledger records one
        [d] = conn.execute("select d.event_id from event_deliveries d join events e on e.id = d.event_id "
                           "where e.aggregate_id = %s and d.agent = 'priority'", (post,)).fetchall()
        conn.execute("update agents set mode = 'live' where name = 'priority'")
        claim = conn.execute("select * from claim_delivery(%s, 'priority', 'test')", (d["event_id"],)).fetchone()
        conn.execute("select fail_delivery(%s, %s, 'bad input (on purpose)', false)",
                     (claim["delivery_id"], claim["claim_token"]))
    operator.goto(stack.dashboard.base_url + "/dead")
    row = operator.locator(f'[data-dead-id="{claim["delivery_id"]}"]')
    row.wait_for(timeout=20000)
    screenshot(operator, "dead-letters")
    row.locator("[data-action=replay]").click()
    operator.locator("[data-action=confirm]").click()
    h.wait_for(lambda: h.scalar(url, "select status from event_deliveries where id = %s",
                                (claim["delivery_id"],)) == "succeeded", 30, "the replayed delivery to succeed")
    [log] = h.rows(url, "select actor, filter, replayed from replay_log")
    assert log["replayed"] == 1 and log["filter"]["agent"] == "priority" and log["actor"].startswith("operator")
    operator.locator("[data-replay-log]").first.wait_for(timeout=20000)


def test_agents_and_metrics_pages(stack: Stack, operator: Any) -> None:
    assert stack.dashboard
    operator.goto(stack.dashboard.base_url + "/agents")
    operator.locator("[data-table=agents]").wait_for()
    assert operator.locator("[data-table=agents] tbody tr", has_text="sentiment").count() == 1
    operator.wait_for_timeout(500)  # let ECharts draw
    screenshot(operator, "agents")
    operator.goto(stack.dashboard.base_url + "/metrics")
    card = operator.locator('[data-metric^="Agent reaction time"]')
    card.wait_for()
    assert card.get_attribute("data-met") in ("met", "not met")
    assert operator.locator('[data-metric="Notifications marked useful"]').count() == 1
    screenshot(operator, "metrics")


def test_nothing_answers_without_a_session(stack: Stack, operator: Any, browser: Any) -> None:
    assert stack.dashboard
    base = stack.dashboard.base_url
    for path in ("/events", "/agents", "/metrics", "/dead", f"/chain/{UUID(int=7)}", "/api/events"):
        assert httpx.get(base + path).status_code == 401, path
    assert httpx.get(base + "/events", cookies={"signalsloop_dashboard": "forged"}).status_code == 401
    page = browser.new_page()
    response = page.goto(base + "/events")
    assert response.status == 401 and page.locator("[data-event-id]").count() == 0
    page.close()


def test_a_member_of_a_sees_nothing_of_b(stack: Stack, browser: Any, tmp_path: Path) -> None:
    assert stack.database_url
    url = stack.database_url
    a, b = h.project(url), h.project(url)
    alice = h.scalar(url, "select owner_id from projects where id = %s", (a,))
    [mine] = h.post(url, a)
    [theirs] = h.post(url, b)
    h.settle(stack, timeout=60)
    dashboard = DashboardProcess(stack.env(), ["--as-user", str(alice)], tmp_path / "member.log")
    try:
        signed_in = dashboard.start()
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(signed_in)
        page.wait_for_selector(f'tr[data-event-id="{event_of(url, mine)}"]', timeout=10000)
        visible = set(rows_on(page))
        projects_of = {str(r["id"]): r["project"] for r in h.rows(
            url, "select id, metadata ->> 'project_id' as project from events where id = any(%s::uuid[])",
            (list(visible),))}
        assert set(projects_of.values()) == {str(a)}
        assert event_of(url, theirs) not in visible
        screenshot(page, "events-member")
        page.goto(dashboard.base_url + "/agents")
        page.locator("[data-table=agents]").wait_for()
        own = int(h.scalar(url, "select count(*) from event_deliveries where agent = 'sentiment' and project_id = %s",
                           (a,)))
        cells = page.locator("[data-table=agents] tbody tr", has_text="sentiment").locator("td").all_inner_texts()
        assert cells[3] == str(own), cells  # the member's deliveries only
        page.goto(f"{dashboard.base_url}/chain/{event_of(url, theirs)}")
        page.get_by_text("No events you may see").wait_for()
        api = page.request.get(dashboard.base_url + "/api/events?limit=500")
        assert {e["project_id"] for e in json.loads(api.body())} == {str(a)}
        page.close()
    finally:
        dashboard.stop()
