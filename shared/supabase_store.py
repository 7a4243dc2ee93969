"""``SupabaseStore``: the store port over supabase-py (PostgREST) with the
service-role key, for production. Same SQL functions as ``PostgresStore``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from threading import Lock
from typing import Any

import httpx
from postgrest.exceptions import APIError

from shared.errors import StoreError
from shared.store import LedgerCalls, jsonable

# PostgREST's own codes for "could not reach or use the database right now".
_RETRIABLE_PGRST = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}
_RETRIABLE_CLASSES = {"08", "40", "53", "55", "57", "58"}


def api_error(exc: APIError) -> StoreError:
    """postgrest-py puts the SQLSTATE or PGRST code in ``code``; for answers
    that are not PostgREST's (a gateway's 502 page, a 429) it puts the HTTP
    status or nothing, and those are worth retrying."""
    code = str(exc.code or "")
    gateway = code == "" or code == "429" or (code.isdigit() and len(code) == 3 and code.startswith("5"))
    retriable = gateway or code in _RETRIABLE_PGRST or code[:2] in _RETRIABLE_CLASSES
    return StoreError(f"PostgREST error {code}: {exc.message}", retriable=retriable, sqlstate=code or None)


class SupabaseStore(LedgerCalls):
    """``timeout_s`` bounds every PostgREST call (keep it inside an agent's
    lease); the httpx client is the store's own, so connections are reused
    across requests of a warm function instead of the library's defaults."""

    def __init__(self, url: str, service_role_key: str, *, client: Any = None, timeout_s: float = 15.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._url = url
        self._key = service_role_key
        self._client = client
        self._timeout_s = timeout_s
        self._transport = transport
        self._lock = Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from supabase.lib.client_options import SyncClientOptions

                from supabase import create_client

                http = httpx.Client(
                    timeout=httpx.Timeout(self._timeout_s, connect=min(5.0, self._timeout_s)),
                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=30),
                    transport=self._transport, http2=False)
                self._client = create_client(self._url, self._key, options=SyncClientOptions(httpx_client=http))
            return self._client

    def _execute(self, request: Any) -> Any:
        try:
            return request.execute().data
        except APIError as exc:
            raise api_error(exc) from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"PostgREST unreachable: {exc}", retriable=True) from exc

    def rpc(self, function: str, params: Mapping[str, Any]) -> Any:
        return self._execute(self.client.rpc(function, jsonable(params)))

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
        query = self.client.table(table).select(",".join(columns) if columns else "*")
        for key, value in (eq or {}).items():
            query = query.eq(key, jsonable(value))
        for key, values in (in_ or {}).items():
            query = query.in_(key, jsonable(list(values)))
        if order:
            query = query.order(order, desc=descending)
        if limit is not None:
            query = query.limit(limit)
        return list(self._execute(query) or [])
