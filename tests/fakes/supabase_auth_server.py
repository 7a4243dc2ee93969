"""A fake Supabase Auth (GoTrue) at its HTTP boundary: the password grant
and the refresh grant.

``/auth/v1/token?grant_type=password`` answers a session for the accounts
added with :meth:`FakeSupabaseAuth.account`, and GoTrue's 400 otherwise;
``?grant_type=refresh_token`` trades a refresh token, once, for a new
session. With ``jwt_secret`` the access tokens are HS256 JWTs of the user
(``sub``, ``role``), as Supabase's are, so a fake PostgREST
(tests/fakes/supabase_rest.py) can run a request as that user."""

from __future__ import annotations

import secrets
import time
from typing import Any
from uuid import UUID

import jwt

from tests.fakes import Canned, FakeHTTPServer, RecordedRequest

TOKEN_PATH = "/auth/v1/token"  # ?grant_type=password


class FakeSupabaseAuth(FakeHTTPServer):
    def __init__(self, jwt_secret: str | None = None, expires_in: int = 3600) -> None:
        super().__init__()
        self.accounts: dict[str, tuple[str, UUID]] = {}
        self.jwt_secret, self.expires_in = jwt_secret, expires_in
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> email

    def account(self, email: str, password: str, user_id: UUID) -> None:
        self.accounts[email] = (password, user_id)

    def default_response(self, request: RecordedRequest) -> Canned:
        if request.method != "POST" or request.path != TOKEN_PATH:
            return super().default_response(request)
        body: dict[str, Any] = request.json or {}
        if "refresh_token" in body:
            email = self.refresh_tokens.pop(str(body["refresh_token"]), None)
            if email is None:
                return Canned(400, {"code": 400, "error_code": "refresh_token_not_found",
                                    "msg": "Invalid Refresh Token: Refresh Token Not Found"})
            return Canned(200, self.session(email))
        known = self.accounts.get(str(body.get("email")))
        if known is None or known[0] != body.get("password"):
            return Canned(400, {"code": 400, "error_code": "invalid_credentials",
                                "msg": "Invalid login credentials"})
        return Canned(200, self.session(str(body["email"])))

    def session(self, email: str) -> dict[str, Any]:
        user_id = self.accounts[email][1]
        now, expires_at = "2026-01-01T00:00:00Z", int(time.time()) + self.expires_in
        user = {"id": str(user_id), "aud": "authenticated", "role": "authenticated", "email": email,
                "app_metadata": {"provider": "email"}, "user_metadata": {}, "created_at": now}
        token = "fake-access-token"
        if self.jwt_secret:
            claims = {"sub": str(user_id), "role": "authenticated", "aud": "authenticated", "email": email,
                      "exp": expires_at, "session_id": secrets.token_hex(8)}
            token = jwt.encode(claims, self.jwt_secret, algorithm="HS256")
        refresh = secrets.token_urlsafe(12)
        self.refresh_tokens[refresh] = email
        return {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in,
                "expires_at": expires_at, "refresh_token": refresh, "user": user}
