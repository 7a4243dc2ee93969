"""Small builders for test data, written through SQL as a web app would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg


@dataclass
class Seed:
    conn: psycopg.Connection

    def user(self, email: str | None = None) -> UUID:
        row = self.conn.execute(
            "insert into auth.users (email) values (%s) returning id", (email or f"{uuid4().hex[:8]}@example.com",)
        ).fetchone()
        return _first(row)

    def project(self, owner: UUID | None = None, slug: str | None = None, **settings: Any) -> UUID:
        from psycopg.types.json import Jsonb

        row = self.conn.execute(
            "insert into projects (name, slug, owner_id, settings) values (%s, %s, %s, %s) returning id",
            ("Acme", slug or f"p-{uuid4().hex[:8]}", owner, Jsonb(settings)),
        ).fetchone()
        return _first(row)

    def post(self, project: UUID, title: str = "Dark mode please", body: str = "", author: UUID | None = None) -> UUID:
        row = self.conn.execute(
            "insert into posts (project_id, title, body, author_id) values (%s, %s, %s, %s) returning id",
            (project, title, body, author),
        ).fetchone()
        return _first(row)

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        cur = self.conn.cursor(row_factory=psycopg.rows.dict_row)
        if type_:
            return cur.execute("select * from events where type = %s order by created_at, id", (type_,)).fetchall()
        return cur.execute("select * from events order by created_at, id").fetchall()

    def deliveries(self, **where: Any) -> list[dict[str, Any]]:
        cur = self.conn.cursor(row_factory=psycopg.rows.dict_row)
        conds = " and ".join(f"{k} = %s" for k in where) or "true"
        query = f"select * from event_deliveries where {conds} order by id"
        return cur.execute(query, tuple(where.values())).fetchall()

    def configure(self, **values: Any) -> None:
        sets = ", ".join(f"{k} = %s" for k in values)
        self.conn.execute(f"update backbone_config set {sets}", tuple(values.values()))

    def agent(self, name: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = %s" for k in values)
        self.conn.execute(f"update agents set {sets} where name = %s", (*values.values(), name))


def _first(row: Any) -> UUID:
    assert row is not None
    return row["id"] if isinstance(row, dict) else row[0]
