"""Sessions: a one-time login token (printed by ``signalsloop dashboard``)
or a Supabase Auth sign-in becomes a signed, HttpOnly session cookie. Nothing
but the sign-in route and the UI library's static assets answers without it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from functions.dashboard.db import Identity

COOKIE = "signalsloop_dashboard"
SESSION_SECONDS = 12 * 3600
# Paths served without a session: signing in, and the library's own JS/CSS
# (identical for everyone; no data).
OPEN_PREFIXES = ("/login", "/_nicegui/", "/favicon.ico", "/healthz")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class Sessions:
    """One-time tokens in memory; sessions in a cookie signed with ``secret``
    (the same secret on every instance, so any instance accepts it)."""

    def __init__(self, secret: str) -> None:
        self._signer = URLSafeTimedSerializer(secret, salt="signalsloop-dashboard")
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def issue_token(self, who: Identity) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = who
        return token

    def redeem(self, token: str) -> Identity | None:
        """The identity for ``token``, once: a second use finds nothing."""
        with self._lock:
            return self._tokens.pop(token, None)

    def cookie_value(self, who: Identity) -> str:
        return self._signer.dumps(who.to_cookie())

    def identity(self, cookie: str | None) -> Identity | None:
        if not cookie:
            return None
        try:
            return Identity.from_cookie(self._signer.loads(cookie, max_age=SESSION_SECONDS))
        except (BadSignature, KeyError, ValueError, TypeError):
            return None

    def from_headers(self, headers: list[tuple[bytes, bytes]]) -> Identity | None:
        for name, value in headers:
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                jar.load(value.decode("latin-1"))
                if COOKIE in jar:
                    return self.identity(jar[COOKIE].value)
        return None


class RequireSession:
    """ASGI middleware: HTTP requests and websockets without a valid session
    are refused (401 / close) before any page or API code runs."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app, self.sessions = app, sessions

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        who = self.sessions.from_headers(scope.get("headers", []))
        if who is not None:
            scope.setdefault("state", {})["identity"] = who
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        body = b"401: sign in first (open the URL that `signalsloop dashboard` printed, or /login)\n"
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def auth_client(url: str, anon_key: str) -> Any:
    """A supabase-py client for one Auth call. It neither keeps the session
    nor refreshes it on a timer: the refresh token is the dashboard's to use
    (supabase_reads), and Supabase rotates it on every refresh."""
    from supabase.lib.client_options import SyncClientOptions

    from supabase import create_client

    return create_client(url, anon_key, options=SyncClientOptions(auto_refresh_token=False, persist_session=False))


def supabase_sign_in(url: str, anon_key: str, email: str, password: str,
                     operators: frozenset[str]) -> Identity:
    """Supabase Auth (email and password): the person's own user id and
    session (the Supabase data path sends their access token to PostgREST);
    an address listed in DASHBOARD_OPERATORS signs in as an operator."""
    from uuid import UUID

    reply = auth_client(url, anon_key).auth.sign_in_with_password({"email": email, "password": password})
    if reply.user is None:
        raise PermissionError("sign-in refused")
    address = (reply.user.email or email).lower()
    session = reply.session
    if session is None:
        return Identity(UUID(str(reply.user.id)), address, operator=address in operators)
    expires = session.expires_at or (time.time() + (session.expires_in or 3600))
    return Identity(UUID(str(reply.user.id)), address, address in operators, session.access_token,
                    session.refresh_token, float(expires))
