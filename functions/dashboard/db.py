"""Who is signed in, and the dashboard's direct-connection data path.

Every page read is one SQL function of migration
``20261202000401_dashboard_reads.sql`` (security invoker), called as the
signed-in person: on the direct connection a member's transaction does
``set local role authenticated`` with their JWT claims (what PostgREST
does), so the RLS policies decide and a page never filters another tenant's
rows out by itself. Operators use the owner connection and see everything.
The other path, through PostgREST with the member's own token, is
:mod:`functions.dashboard.supabase_reads`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

Conn = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class Identity:
    """Who is signed in: a member (``user_id``) or an operator (sees all).

    A Supabase Auth sign-in also carries the person's own session (access
    token, refresh token, expiry), which the Supabase data path sends to
    PostgREST; it lives in the signed, HttpOnly session cookie, as Supabase's
    own server-side helpers keep it."""

    user_id: UUID | None
    label: str
    operator: bool = False
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None

    def claims(self) -> dict[str, Any]:
        return {"sub": str(self.user_id), "role": "authenticated", "aud": "authenticated"}

    def to_cookie(self) -> dict[str, Any]:
        data: dict[str, Any] = {"u": str(self.user_id) if self.user_id else None, "l": self.label,
                                "o": self.operator}
        if self.access_token:
            data.update({"t": self.access_token, "r": self.refresh_token, "x": self.expires_at})
        return data

    @classmethod
    def from_cookie(cls, data: dict[str, Any]) -> Identity:
        return cls(UUID(data["u"]) if data.get("u") else None, str(data.get("l", "")), bool(data.get("o")),
                   data.get("t"), data.get("r"), float(data["x"]) if data.get("x") else None)


class PsycopgReads:
    """The direct-connection adapter of :class:`~functions.dashboard.reads.DashboardReads`:
    a small pool; each call is one transaction as ``who``."""

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, name="dashboard",
            kwargs={"autocommit": True, "row_factory": dict_row},
        )

    def call(self, who: Identity, function: str, args: Mapping[str, Any]) -> Any:
        query = sql.SQL("select public.{}({}) as result").format(
            sql.Identifier(function),
            sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in args))
        params = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in args.items()}
        with self.pool.connection() as conn, conn.transaction():
            if not who.operator:
                if who.user_id is None:
                    raise PermissionError("a member session without a user id")
                conn.execute("set local role authenticated")
                conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(who.claims()),))
            # A page never waits long on a busy database.
            conn.execute("set local statement_timeout = '15s'")
            row = conn.execute(query, params).fetchone()
        return row["result"] if row else None

    def ping(self, timeout_s: float = 5.0) -> None:
        """One round trip; a database the pool cannot reach raises PoolTimeout after ``timeout_s``."""
        with self.pool.connection(timeout=timeout_s) as conn:
            conn.execute("select 1")

    def close(self) -> None:
        self.pool.close()
