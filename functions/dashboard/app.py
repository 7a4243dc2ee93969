"""The dashboard server: NiceGUI (FastAPI + Vue/Quasar + ECharts, assets
shipped in its wheel, websockets built in) with the session middleware, the
sign-in routes, the live-update feed and the pages.

``build(config)`` registers everything on NiceGUI's app; ``serve(config)``
runs it (``signalsloop dashboard`` locally, ``main.py`` on Cloud Run).
"""

from __future__ import annotations

import html
import logging
import secrets
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from functions.dashboard.auth import COOKIE, SESSION_SECONDS, RequireSession, Sessions, supabase_sign_in
from functions.dashboard.db import Identity, PsycopgReads
from functions.dashboard.feed import Feed, LiveUpdates
from functions.dashboard.reads import DashboardReads
from shared.errors import ConfigurationError

log = logging.getLogger("signalsloop.dashboard")


@dataclass
class Config:
    # A direct connection: pages run as the signed-in role on it. Without
    # one, pages go through PostgREST (supabase_url + supabase_anon_key) with
    # each member's own access token.
    database_url: str | None
    host: str = "127.0.0.1"
    port: int = 8700
    # Signs the session cookies; give every instance the same one (Cloud Run).
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    live: str = "auto"
    supabase_url: str | None = None
    supabase_key: str | None = None
    supabase_anon_key: str | None = None
    # Operators' reads on the Supabase path (they see every project).
    supabase_service_role_key: str | None = None
    operators: frozenset[str] = frozenset()
    secure_cookie: bool = False
    on_ready: Callable[[Server], None] | None = None


class Server:
    """What every page shares: the data path, the feed and the update-latency record."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sessions = Sessions(config.session_secret)
        self.reads: DashboardReads | None = None
        self.feed = Feed()
        self.live: LiveUpdates | None = None
        self.push_latency_ms: deque[float] = deque(maxlen=2000)

    @property
    def base_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def login_url(self, who: Identity) -> str:
        return f"{self.base_url}/login?token={self.sessions.issue_token(who)}"

    def start(self) -> None:
        self.reads = data_path(self.config)
        self.live = LiveUpdates(self.feed, database_url=self.config.database_url, mode=self.config.live,
                                supabase_url=self.config.supabase_url, supabase_key=self.config.supabase_key)
        self.live.start()

    def stop(self) -> None:
        if self.live:
            self.live.stop()
        if self.reads:
            self.reads.close()

    def run(self, who: Identity, read: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``read(reads, who, ...)`` on this server's data path."""
        assert self.reads is not None
        return read(self.reads, who, *args, **kwargs)

    def update_p95_ms(self) -> float | None:
        values = list(self.push_latency_ms)
        if len(values) < 2:
            return values[0] if values else None
        return statistics.quantiles(values, n=20)[18]


def data_path(config: Config) -> DashboardReads:
    """The direct connection when there is one, else supabase-py (PostgREST)."""
    if config.database_url:
        return PsycopgReads(config.database_url)
    if not (config.supabase_url and config.supabase_anon_key):
        raise ConfigurationError("the dashboard needs DATABASE_URL, or SUPABASE_URL and SUPABASE_ANON_KEY")
    from functions.dashboard.supabase_reads import SupabaseReads

    return SupabaseReads(config.supabase_url, config.supabase_anon_key, config.supabase_service_role_key)


SERVER: Server | None = None


def server() -> Server:
    assert SERVER is not None, "the dashboard is not built"
    return SERVER


def identity(request: Request) -> Identity:
    who = server().sessions.identity(request.cookies.get(COOKIE))
    if who is None:  # the middleware already refused; a page never runs without one
        raise PermissionError("no session")
    return who


def _signed_in(who: Identity, to: str = "/events") -> Response:
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(COOKIE, server().sessions.cookie_value(who), max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", secure=server().config.secure_cookie)
    return response


LOGIN_FORM = """<!doctype html><title>SignalsLoop dashboard: sign in</title>
<form method="post" action="/login" style="font-family:sans-serif;max-width:20em;margin:4em auto">
<h2>SignalsLoop</h2>{error}
<p><input name="email" type="email" placeholder="email" required style="width:100%"></p>
<p><input name="password" type="password" placeholder="password" required style="width:100%"></p>
<p><button>Sign in with Supabase</button></p></form>"""


def register_routes() -> None:
    from nicegui import app

    @app.get("/login")
    def login(token: str | None = None) -> Response:
        if token:
            who = server().sessions.redeem(token)
            if who is None:
                return PlainTextResponse("401: this sign-in link was used already or is unknown\n", status_code=401)
            return _signed_in(who)
        if server().config.supabase_url and server().config.supabase_anon_key:
            return HTMLResponse(LOGIN_FORM.format(error=""))
        return PlainTextResponse("401: sign in with the URL `signalsloop dashboard` printed\n", status_code=401)

    @app.post("/login")
    def login_form(email: str = Form(...), password: str = Form(...)) -> Response:
        cfg = server().config
        if not (cfg.supabase_url and cfg.supabase_anon_key):
            return PlainTextResponse("401: Supabase Auth is not configured\n", status_code=401)
        try:
            who = supabase_sign_in(cfg.supabase_url, cfg.supabase_anon_key, email, password, cfg.operators)
        except Exception as exc:  # wrong password, unknown user, Auth unreachable: one answer
            log.info("sign-in refused for %s: %s", email, exc)
            return HTMLResponse(LOGIN_FORM.format(error=f"<p style='color:red'>{html.escape('Sign-in refused.')}</p>"),
                                status_code=401)
        return _signed_in(who)

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        """For uptime checks, without a session: 200 when the data path
        answers, else 503 naming the kind of failure (no message: it is open
        to anyone, and a driver's message can name hosts)."""
        reads = server().reads
        try:
            if reads is None:
                raise ConfigurationError("not started")
            reads.ping()
        except Exception as exc:
            log.warning("healthz: the data path does not answer: %s", exc)
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get("/api/events")
    def api_events(request: Request, limit: int = 50) -> list[dict[str, Any]]:
        """The newest events the session may see, as JSON (scripts, health checks)."""
        from functions.dashboard.queries import EventFilter, list_events

        try:
            rows = server().run(identity(request), list_events, EventFilter(), limit=max(1, min(limit, 500)))
        except PermissionError as exc:  # the Supabase session expired or was refused
            return PlainTextResponse(f"403: {exc}\n", status_code=403)  # type: ignore[return-value]
        return [{**r, "id": str(r["id"]), "aggregate_id": str(r["aggregate_id"]),
                 "created_at": r["created_at"].isoformat()} for r in rows]


def build(config: Config) -> Server:
    """Register the middleware, routes and pages on NiceGUI's app (once per process)."""
    global SERVER
    from nicegui import app

    from functions.dashboard import pages_events, pages_health, pages_ledger

    SERVER = Server(config)
    app.add_middleware(RequireSession, sessions=SERVER.sessions)
    register_routes()
    pages_events.register()
    pages_ledger.register()
    pages_health.register()
    app.on_startup(SERVER.start)
    app.on_shutdown(SERVER.stop)
    if config.on_ready is not None:
        ready = config.on_ready
        app.on_startup(lambda: ready(SERVER))  # type: ignore[arg-type]
    return SERVER


def serve(config: Config) -> None:
    from nicegui import ui

    build(config)
    # A page whose websocket drops keeps its state this long (a busy laptop, a
    # phone changing networks) instead of reloading. No Tailwind: its runtime
    # compiler scans the page on every change (a third of a first load's
    # style work, and again on every live update); the pages use Quasar's
    # own classes.
    ui.run(host=config.host, port=config.port, title="SignalsLoop", reload=False, show=False,
           show_welcome_message=False, favicon="📡", uvicorn_logging_level="warning", reconnect_timeout=30,
           tailwind=False)
