"""The Supabase data path of the dashboard: each page read is an RPC
through supabase-py (PostgREST) with the signed-in member's own Supabase
Auth access token, so PostgREST runs it as ``authenticated`` with their
claims and the tables' RLS decides, exactly as on the direct connection.
Operators (addresses in ``DASHBOARD_OPERATORS``, signed in with Supabase
Auth) are served with the service-role key: the "operator who sees all".
The anon key is only the ``apikey`` header PostgREST requires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
from postgrest.exceptions import APIError

from functions.dashboard.auth import auth_client
from functions.dashboard.db import Identity
from shared.errors import StoreError
from shared.store import jsonable
from shared.supabase_store import api_error

log = logging.getLogger("signalsloop.dashboard.supabase")
# Refresh an access token this long before it expires.
REFRESH_MARGIN_S = 60.0
# /healthz calls this RPC: granted to authenticated and service_role only.
HEALTH_PROBE = "dashboard_since"
REFUSED = {"42501"}  # a privilege or the replay's owner/admin check; PGRST3xx: the JWT is invalid or expired


class SessionExpired(PermissionError):
    """The person's Supabase session is gone (expired, revoked, refreshed
    elsewhere): they sign in again."""


class SupabaseReads:
    """One supabase-py client (its PostgREST session shared by every call);
    each call derives a PostgREST client with the caller's bearer token, so
    concurrent pages never see each other's token."""

    def __init__(self, url: str, anon_key: str, service_role_key: str | None = None, *,
                 timeout_s: float = 15.0, transport: httpx.BaseTransport | None = None) -> None:
        from supabase.lib.client_options import SyncClientOptions

        from supabase import create_client

        self.url, self.anon_key, self.service_role_key = url, anon_key, service_role_key
        self.http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)), transport=transport,
                                 limits=httpx.Limits(max_connections=16, max_keepalive_connections=8))
        # A replay is not idempotent: no automatic retries of a POST.
        self.client = create_client(url, anon_key, options=SyncClientOptions(
            httpx_client=self.http, postgrest_client_retry=False))
        self._refreshed: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def call(self, who: Identity, function: str, args: Mapping[str, Any]) -> Any:
        rest = self.client.postgrest.schema("public").auth(self.bearer(who))
        try:
            return rest.rpc(function, jsonable(dict(args))).execute().data
        except APIError as exc:
            error = api_error(exc)
            if error.sqlstate and error.sqlstate.startswith("PGRST3"):
                raise SessionExpired(str(exc.message)) from exc
            if error.sqlstate in REFUSED:
                raise PermissionError(str(exc.message)) from exc
            raise error from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"PostgREST unreachable: {exc}", retriable=True) from exc

    def bearer(self, who: Identity) -> str:
        """The token PostgREST runs the call as: the member's own (refreshed
        when it is about to expire), or the service-role key for an operator."""
        if who.operator:
            if not self.service_role_key:
                raise PermissionError("operators on Supabase need SUPABASE_SERVICE_ROLE_KEY on the dashboard")
            return self.service_role_key
        if not who.access_token:
            raise SessionExpired("sign in with Supabase Auth (/login): this session has no access token")
        return self.current(who).access_token or ""

    def current(self, who: Identity) -> Identity:
        """``who`` with a live access token. A page may stay open longer than
        a token lives (an hour by default): this instance refreshes it once
        with the session's refresh token and keeps the new session for the
        pages that still hold the old one."""
        with self._lock:
            known = self._refreshed.get(who.refresh_token or "", who)
            if known.expires_at is None or known.expires_at - time.time() > REFRESH_MARGIN_S:
                return known
            try:
                reply = auth_client(self.url, self.anon_key).auth.refresh_session(known.refresh_token)
            except Exception as exc:  # revoked, reused or Auth unreachable: sign in again
                raise SessionExpired(f"the Supabase session could not be refreshed ({exc}); sign in again") from exc
            session = reply.session
            if session is None:
                raise SessionExpired("the Supabase session expired; sign in again")
            fresh = Identity(who.user_id, who.label, who.operator, session.access_token, session.refresh_token,
                             float(session.expires_at or time.time() + (session.expires_in or 3600)))
            self._refreshed[who.refresh_token or ""] = fresh
            return fresh

    def ping(self, timeout_s: float = 5.0) -> None:
        """One round trip to the database through PostgREST: the dashboard's
        own ``dashboard_since`` RPC. With the service-role key it runs and
        answers 200; with the anon key alone the database itself refuses it
        (42501, which PostgREST answers 401), which proves as much. Anything
        else is down: 5xx (PostgREST without its database), or PGRST202 (the
        dashboard's migrations are missing, or the schema cache is stale)."""
        reply = self.http.post(f"{self.url}/rest/v1/rpc/{HEALTH_PROBE}", json={"p_window_s": 60}, timeout=timeout_s,
                               headers={"apikey": self.anon_key,
                                        "Authorization": f"Bearer {self.service_role_key or self.anon_key}"})
        if reply.status_code == 200:
            return
        try:
            body = reply.json()
        except ValueError:
            body = {}
        code = str(body.get("code", "")) if isinstance(body, dict) else ""
        if code == "42501":
            return
        raise StoreError(f"PostgREST answered {reply.status_code} {code or '(no code)'} to {HEALTH_PROBE}",
                         retriable=reply.status_code >= 500)

    def close(self) -> None:
        self.http.close()
