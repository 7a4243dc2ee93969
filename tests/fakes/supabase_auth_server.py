"""A fake Supabase Auth (GoTrue) at its HTTP boundary: the password grant.

``/auth/v1/token?grant_type=password`` answers a session for the accounts
added with :meth:`FakeSupabaseAuth.account`, and GoTrue's 400 otherwise."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from tests.fakes import Canned, FakeHTTPServer, RecordedRequest

TOKEN_PATH = "/auth/v1/token"  # ?grant_type=password


class FakeSupabaseAuth(FakeHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.accounts: dict[str, tuple[str, UUID]] = {}

    def account(self, email: str, password: str, user_id: UUID) -> None:
        self.accounts[email] = (password, user_id)

    def default_response(self, request: RecordedRequest) -> Canned:
        if request.method != "POST" or request.path != TOKEN_PATH:
            return super().default_response(request)
        body: dict[str, Any] = request.json or {}
        known = self.accounts.get(str(body.get("email")))
        if known is None or known[0] != body.get("password"):
            return Canned(400, {"code": 400, "error_code": "invalid_credentials",
                                "msg": "Invalid login credentials"})
        now = "2026-01-01T00:00:00Z"
        user = {"id": str(known[1]), "aud": "authenticated", "role": "authenticated", "email": body["email"],
                "app_metadata": {"provider": "email"}, "user_metadata": {}, "created_at": now}
        return Canned(200, {"access_token": "fake-access-token", "token_type": "bearer", "expires_in": 3600,
                            "expires_at": int(time.time()) + 3600, "refresh_token": "fake-refresh", "user": user})
