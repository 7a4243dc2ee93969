"""``PostgresStore``: the store port over psycopg and ``DATABASE_URL``.

Used locally, in tests and by the relay. Connections come from a small pool
opened on first use (never at import), which also rides out a database restart:
a connection idle for a while is checked and replaced if broken before it is
handed out; one broken since its last use fails its query retriably.
"""

from __future__ import annotations

import functools
import re
import time
import weakref
from collections.abc import Mapping, Sequence
from threading import Lock
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from shared.errors import StoreError
from shared.store import LedgerCalls, jsonable

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# SQLSTATE classes worth retrying: connection, transaction rollback
# (serialization, deadlock), resources, object state (lock timeouts),
# operator intervention, system errors.
_RETRIABLE_CLASSES = {"08", "40", "53", "55", "57", "58"}
# A connection back in the pool for longer than this is checked (one empty
# round trip) before it is handed out again; a fresher one is not: checking
# every checkout doubled the round trips of every delivery.
CHECK_IDLE_SECONDS = 1.0


def store_error(exc: psycopg.Error) -> StoreError:
    state = getattr(exc, "sqlstate", None)
    retriable = isinstance(exc, psycopg.OperationalError) or (state is not None and state[:2] in _RETRIABLE_CLASSES)
    return StoreError(f"database error: {str(exc).strip()}", retriable=retriable, sqlstate=state)


def _adapt(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Jsonb(jsonable(value))
    if isinstance(value, list | tuple) and (not value or isinstance(value[0], Mapping)):
        return Jsonb(jsonable(list(value)))
    return value


class PostgresStore(LedgerCalls):
    def __init__(self, url: str, *, max_size: int = 4, role: str | None = None) -> None:
        self._url = url
        self._max_size = max_size
        self._role = role
        self._pool: ConnectionPool | None = None
        self._lock = Lock()
        self._retset: dict[str, bool] = {}
        # When each connection came back to the pool (weak: closed ones drop out).
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()

    # -- plumbing ---------------------------------------------------------

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
                if self._role:
                    kwargs["options"] = f"-c role={self._role}"
                self._pool = ConnectionPool(
                    self._url, min_size=1, max_size=self._max_size, kwargs=kwargs,
                    check=self._check_if_idle, reset=self._stamp, open=True, timeout=10,
                )
            return self._pool

    def _stamp(self, conn: psycopg.Connection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    def _check_if_idle(self, conn: psycopg.Connection[Any]) -> None:
        """A database restart breaks idle connections: those are checked (and
        replaced when broken); one used a moment ago is handed out as is, and
        if it broke since, the query fails retriably and the pool drops it."""
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > CHECK_IDLE_SECONDS:
            ConnectionPool.check_connection(conn)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _fetch(self, query: sql.Composed | sql.SQL | str, params: Any = None) -> list[dict[str, Any]]:
        try:
            with self._get_pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            raise store_error(exc) from exc
        except Exception as exc:  # pool timeouts and the like
            if exc.__class__.__module__.startswith("psycopg_pool"):
                raise StoreError(f"database unavailable: {exc}", retriable=True) from exc
            raise

    # -- the port ---------------------------------------------------------

    def rpc(self, function: str, params: Mapping[str, Any]) -> Any:
        if not _IDENT.match(function) or not all(_IDENT.match(k) for k in params):
            raise StoreError(f"invalid function or argument name in {function}", retriable=False)
        adapted = {k: _adapt(v) for k, v in params.items()}
        returns_set = self._returns_set(function)
        rows = self._fetch(_rpc_query(function, tuple(params), returns_set), adapted)
        if returns_set:
            return rows
        return rows[0]["value"] if rows else None

    def _returns_set(self, function: str) -> bool:
        if function not in self._retset:
            rows = self._fetch(
                "select bool_or(proretset) as retset from pg_proc where proname = %s "
                "and pronamespace = 'public'::regnamespace",
                (function,),
            )
            if not rows or rows[0]["retset"] is None:
                raise StoreError(f"unknown database function public.{function}", retriable=False)
            self._retset[function] = bool(rows[0]["retset"])
        return self._retset[function]

    def select(
        self,
        table: str,
        *,
        eq: Mapping[str, Any] | None = None,
        in_: Mapping[str, Sequence[Any]] | None = None,
        columns: Sequence[str] | None = None,
        order: str | None = None,
        descending: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        names = [table, *(columns or ()), *(eq or {}), *(in_ or {}), *([order] if order else [])]
        if not all(_IDENT.match(n) for n in names):
            raise StoreError(f"invalid identifier in select from {table}", retriable=False)
        query = _select_query(table, tuple(columns or ()), tuple(eq or {}), tuple(in_ or {}), order, descending,
                              None if limit is None else int(limit))
        params: list[Any] = [*(eq or {}).values(), *[list(v) for v in (in_ or {}).values()]]
        return self._fetch(query, params)


# Query text by shape, built once: composing it on every call cost about as
# much CPU as the round trip itself. Identifiers were checked by the caller.
@functools.lru_cache(maxsize=512)
def _rpc_query(function: str, names: tuple[str, ...], returns_set: bool) -> str:
    args = sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in names)
    call = sql.SQL("public.{}({})").format(sql.Identifier(function), args)
    shape = sql.SQL("select * from {}") if returns_set else sql.SQL("select {} as value")
    return shape.format(call).as_string(None)


@functools.lru_cache(maxsize=512)
def _select_query(table: str, columns: tuple[str, ...], eq: tuple[str, ...], in_: tuple[str, ...],
                  order: str | None, descending: bool, limit: int | None) -> str:
    cols = sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*")
    conds = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in eq]
    conds += [sql.SQL("{} = any(%s)").format(sql.Identifier(k)) for k in in_]
    query = sql.SQL("select {} from public.{}").format(cols, sql.Identifier(table))
    if conds:
        query += sql.SQL(" where ") + sql.SQL(" and ").join(conds)
    if order:
        query += sql.SQL(" order by {} {}").format(sql.Identifier(order), sql.SQL("desc" if descending else "asc"))
    if limit is not None:
        query += sql.SQL(" limit {}").format(sql.Literal(limit))
    return query.as_string(None)
