"""Every dashboard query runs as the signed-in person, under the same RLS the
web app has: on the direct connection a member's transaction does
``set local role authenticated`` with their JWT claims (what PostgREST does),
so a page never filters another tenant's rows out by itself. Operators use
the owner connection and see everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

T = TypeVar("T")
Conn = psycopg.Connection[dict[str, Any]]


@dataclass(frozen=True)
class Identity:
    """Who is signed in: a member (``user_id``) or an operator (sees all)."""

    user_id: UUID | None
    label: str
    operator: bool = False

    def claims(self) -> dict[str, Any]:
        return {"sub": str(self.user_id), "role": "authenticated", "aud": "authenticated"}

    def to_cookie(self) -> dict[str, Any]:
        return {"u": str(self.user_id) if self.user_id else None, "l": self.label, "o": self.operator}

    @classmethod
    def from_cookie(cls, data: dict[str, Any]) -> Identity:
        return cls(UUID(data["u"]) if data.get("u") else None, str(data.get("l", "")), bool(data.get("o")))


class Ledger:
    """A small pool of direct connections; ``run`` wraps one transaction as ``who``."""

    def __init__(self, url: str, *, max_size: int = 8) -> None:
        self.url = url
        self.pool: ConnectionPool[Conn] = ConnectionPool(
            url, min_size=1, max_size=max_size, open=True, name="dashboard",
            kwargs={"autocommit": True, "row_factory": dict_row},
        )

    def run(self, who: Identity, work: Callable[[Conn], T]) -> T:
        with self.pool.connection() as conn, conn.transaction():
            if not who.operator:
                if who.user_id is None:
                    raise PermissionError("a member session without a user id")
                conn.execute("set local role authenticated")
                conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(who.claims()),))
            # A page never waits long on a busy database.
            conn.execute("set local statement_timeout = '15s'")
            return work(conn)

    def close(self) -> None:
        self.pool.close()
