"""The dashboard's data port: call one of its SQL functions as the signed-in
person. Two adapters, one SQL: :class:`~functions.dashboard.db.PsycopgReads`
(a direct connection, ``set local role authenticated`` with the member's
claims) and :class:`~functions.dashboard.supabase_reads.SupabaseReads`
(supabase-py through PostgREST with the member's own access token). Either
way the functions run as the caller, so RLS decides what a member sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from functions.dashboard.db import Identity


class DashboardReads(Protocol):
    def call(self, who: Identity, function: str, args: Mapping[str, Any]) -> Any:
        """The JSON the function ``public.<function>`` answers, called as ``who``.
        Raises PermissionError when the database refuses ``who``."""

    def ping(self) -> None:
        """Return when the data path can answer now; raise (within a few
        seconds) when it cannot: the dashboard's ``/healthz``."""

    def close(self) -> None: ...
