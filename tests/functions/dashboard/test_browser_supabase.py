"""The dashboard on the Supabase data path in a real headless Chromium: the
packaged service started without DATABASE_URL, people signing in at /login
with Supabase Auth, every page read an RPC through PostgREST (a fake that
forwards it to the real database as the bearer token's user). A member sees
only their project, new rows arrive without a reload (polling: each page
re-reads under its own token), and a plain member's replay is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from signalsloop.local.browser import INSTALL_HINT, chromium, chromium_path, screenshot
from tests.fakes.supabase_rest import ANON_KEY, SERVICE_ROLE_KEY, FakeSupabase
from tests.functions.dashboard.test_service import packaged
from tests.helpers import Seed
from tests.supabase.test_dashboard_access import kill

pytestmark = [pytest.mark.skipif(chromium_path() is None, reason=INSTALL_HINT), pytest.mark.timeout(240)]


@pytest.fixture
def supabase(db_url: str, no_proxy: None) -> Iterator[FakeSupabase]:
    with FakeSupabase(db_url) as fake:
        yield fake


@pytest.fixture
def service(tmp_path: Path, supabase: FakeSupabase) -> Iterator[str]:
    with packaged(tmp_path, {"SUPABASE_URL": supabase.url, "SUPABASE_ANON_KEY": ANON_KEY,
                             "SUPABASE_SERVICE_ROLE_KEY": SERVICE_ROLE_KEY}) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def sign_in(browser: Any, service: str, email: str) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(service + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", "pw")
    page.click("button")
    page.wait_for_url("**/events")
    return page


def event_of(db: psycopg.Connection, post: Any) -> str:
    return str(db.execute("select id from events where aggregate_id = %s and type = 'feedback.created'",
                          (post,)).fetchone()["id"])


def test_a_member_through_postgrest_sees_their_project_live_and_cannot_replay(
        service: str, supabase: FakeSupabase, browser: Any, seed: Seed, db: psycopg.Connection) -> None:
    alice, bob, carol = seed.user("alice@example.com"), seed.user("bob@example.com"), seed.user("carol@example.com")
    mine, theirs = seed.project(owner=alice), seed.project(owner=bob)
    db.execute("insert into project_members (project_id, user_id, role) values (%s, %s, 'member')", (mine, carol))
    first, other = seed.post(mine, "Alice's"), seed.post(theirs, "Bob's")
    dead = kill(db, mine)
    supabase.account("carol@example.com", "pw", carol)

    page = sign_in(browser, service, "carol@example.com")
    page.wait_for_selector(f'tr[data-event-id="{event_of(db, first)}"]', timeout=15000)
    later = seed.post(mine, "Posted while the page is open")
    page.wait_for_selector(f'tr[data-event-id="{event_of(db, later)}"]', timeout=15000)
    shown = {e.get_attribute("data-event-id") for e in page.locator("tr[data-event-id]").all()}
    assert event_of(db, other) not in shown and len(shown) == 2
    screenshot(page, "events-member-supabase")

    page.goto(service + "/dead")
    row = page.locator(f'[data-dead-id="{dead}"]')
    row.wait_for(timeout=15000)
    row.locator("[data-action=replay]").click()
    page.locator("[data-action=confirm]").click()
    page.get_by_text("replay refused").wait_for(timeout=15000)
    screenshot(page, "dead-letters-member-supabase")
    assert db.execute("select status from event_deliveries where id = %s", (dead,)).fetchone()["status"] == "dead"
    assert db.execute("select count(*) as n from replay_log").fetchone()["n"] == 0

    members = [c for c in supabase.rest.calls if c["role"] == "authenticated"]
    assert {"dashboard_filters", "dashboard_events", "dashboard_dead_letters", "replay_dead_letters"} <= {
        c["function"] for c in members}
    assert {c["sub"] for c in members} == {str(carol)}
    assert not [c for c in supabase.rest.calls if c["role"] == "service_role"], "no page read with the service key"
