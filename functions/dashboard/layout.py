"""The frame every page shares: navigation, who is signed in, the live source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from nicegui import run, ui

from functions.dashboard.app import server
from functions.dashboard.db import Identity

PAGES = (("/events", "Events"), ("/agents", "Agents"), ("/metrics", "Success metrics"), ("/dead", "Dead letters"))
T = TypeVar("T")
STATUS_COLORS = {"succeeded": "green", "dead": "red", "failed": "orange", "pending": "grey", "running": "blue",
                 "parked": "purple", "blocked": "black"}
# How long a page may take to build before NiceGUI gives up with an error page
# (its default, 3 s, is short for a busy database or a starved laptop).
RESPONSE_TIMEOUT_S = 30.0
WINDOWS = {"15 minutes": 900, "1 hour": 3600, "24 hours": 86400, "7 days": 604800}


def frame(who: Identity, title: str) -> None:
    ui.page_title(f"{title} · SignalsLoop")
    with ui.header().classes("items-center bg-blue-grey-10"):
        ui.label("SignalsLoop").classes("text-h6 text-weight-bold")
        for href, name in PAGES:
            ui.link(name, href).classes("text-white").style(
                "text-decoration: " + ("underline" if name == title else "none"))
        ui.space()
        # A binding, not a ui.timer: a timer waits for the page's websocket,
        # and NiceGUI then sends the page before its content is built, so the
        # content would follow over the socket after the scripts have loaded.
        ui.badge(color="teal").props("data-live-source").bind_text_from(
            server().feed, "source", backward=lambda source: f"live: {source}")
        ui.label(("operator: " if who.operator else "member: ") + who.label).props("data-signed-in")
        ui.link("sign out", "/logout").classes("text-white")


async def query(who: Identity, read: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``read(reads, who, *args, **kwargs)`` (a function of
    :mod:`~functions.dashboard.queries` or :mod:`~functions.dashboard.health`)
    off the event loop, as ``who``, on the server's data path."""
    from functions.dashboard.supabase_reads import SessionExpired

    try:
        # io_bound answers None only when the app is shutting down.
        return await run.io_bound(server().run, who, read, *args, **kwargs)  # type: ignore[return-value]
    except SessionExpired:
        ui.navigate.to("/logout")  # clears the cookie, then the sign-in form
        raise


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else ""


def short(value: Any) -> str:
    return str(value)[:8] if value else ""


def project_names(projects: list[dict[str, Any]]) -> dict[str, str]:
    """Project id -> its name, with the slug where two projects share a name,
    and the id's start where they share the slug too (slugs are unique per
    owner, so an operator can see two owners' "Acme (acme)")."""
    names = [p["name"] for p in projects]
    pairs = [(p["name"], p["slug"]) for p in projects]

    def label(p: dict[str, Any]) -> str:
        if names.count(p["name"]) == 1:
            return str(p["name"])
        if pairs.count((p["name"], p["slug"])) == 1:
            return f"{p['name']} ({p['slug']})"
        return f"{p['name']} ({p['slug']}, {short(p['id'])})"

    return {str(p["id"]): label(p) for p in projects}
