"""The store port: what the runtime and the agents ask of the database.

Two adapters implement it, :class:`shared.postgres_store.PostgresStore`
(psycopg, ``DATABASE_URL``) and :class:`shared.supabase_store.SupabaseStore`
(supabase-py, PostgREST, service-role key). Both call the same SQL functions,
so claims, idempotency and the ledger behave identically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from uuid import UUID

from shared.events import DomainEvent

ClaimOutcome = Literal["claimed", "duplicate", "finished", "not_due", "parked", "busy", "off", "woken",
                       "unknown_event", "not_subscribed"]


@dataclass(frozen=True)
class Claim:
    """What the ledger answered to a claim. A won claim carries the stored
    event: the ledger, not the doorbell's body, is what the agent runs on."""

    outcome: ClaimOutcome
    delivery_id: int | None = None
    claim_token: UUID | None = None
    attempt: int | None = None
    max_attempts: int | None = None
    event: Mapping[str, Any] | None = None
    project_id: UUID | None = None
    serialize_by_project: bool = False
    drain_budget_ms: int = 0
    # A shadow run decides and records what it would do; it has no effects.
    shadow: bool = False

    @property
    def claimed(self) -> bool:
        return self.outcome == "claimed"


@dataclass(frozen=True)
class Write:
    """Rows to upsert into one result table on its natural key."""

    table: str
    rows: Sequence[Mapping[str, Any]]
    on_conflict: tuple[str, ...] = ()
    update: bool = True
    # A column (a timestamp) that must not go backwards: the stored row is
    # replaced only by one at least as new, so late retries cannot win.
    guard: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "table": self.table,
            "rows": [jsonable(r) for r in self.rows],
            "on_conflict": list(self.on_conflict),
            "update": self.update,
        }
        if self.guard:
            body["guard"] = self.guard
        return body


@dataclass(frozen=True)
class Completion:
    completed: bool
    written: int = 0
    published: int = 0
    reason: str | None = None


@dataclass(frozen=True)
class FailureRecord:
    recorded: bool
    status: str | None = None
    attempts: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store(Protocol):
    def claim(self, event_id: UUID, agent: str, worker: str | None = None) -> Claim: ...

    def claim_next(self, agent: str, worker: str | None = None, project_id: UUID | None = None, *,
                   drainer: UUID | None = None, hold_ms: int = 0) -> Claim | None:
        """The agent's next due delivery, claimed; None when nothing is due.
        With ``drainer``, the first claim registers that drainer (for
        ``hold_ms`` at most): until it ends, new deliveries it will take are
        not rung."""
        ...

    def end_drain(self, drainer: UUID, agent: str, project_id: UUID | None, *, ring_next: bool) -> int:
        """The drainer is gone (new deliveries are rung again); with
        ``ring_next``, ring the agent's next due delivery."""
        ...

    def drain_hold(self, drainer: UUID, agent: str, project_id: UUID | None, *, stays_ms: int,
                   hold_ms: int) -> int:
        """How long a drain waiting for work stays, in ms (0: leave now). With
        ``stays_ms`` (a drain staying to its budget's end): that long. Without
        (a quiet drain): as long as another drainer holds the doorbell's batch
        open, registered as a drainer meanwhile (0 unless the doorbell batches,
        as pg_net does). Under a batching doorbell both get 0 when an agent
        whose ring waits behind the batch starves."""
        ...

    def complete(self, claim: Claim, writes: Sequence[Write], events: Sequence[DomainEvent]) -> Completion: ...

    def fail(self, claim: Claim, error: str, *, retriable: bool, retry_after: float | None = None,
             infrastructure: bool | None = None) -> FailureRecord: ...

    def complete_shadow(self, claim: Claim, decision: Mapping[str, Any], model: str | None) -> Completion:
        """Record a shadow run's decision; nothing is written or published."""
        ...

    def publish(self, events: Sequence[DomainEvent]) -> int: ...

    def rpc(self, function: str, params: Mapping[str, Any]) -> Any:
        """Call a SQL function by name with named arguments; a set-returning
        function gives a list of dicts, a scalar one its value (as PostgREST does)."""
        ...

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
    ) -> list[dict[str, Any]]: ...


def jsonable(value: Any) -> Any:
    """UUIDs, datetimes and nested containers to JSON-ready values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def claim_from_row(row: Mapping[str, Any] | None) -> Claim:
    if not row:
        return Claim("not_subscribed")
    token = row.get("claim_token")
    project = row.get("project_id")
    return Claim(
        outcome=row["outcome"],
        delivery_id=row.get("delivery_id"),
        claim_token=UUID(str(token)) if token else None,
        attempt=row.get("attempt"),
        max_attempts=row.get("max_attempts"),
        event=row.get("event"),
        project_id=UUID(str(project)) if project else None,
        serialize_by_project=bool(row.get("serialize_by_project")),
        drain_budget_ms=int(row.get("drain_budget_ms") or 0),
        shadow=bool(row.get("shadow")),
    )


class LedgerCalls:
    """The ledger operations, written once over ``rpc``: both adapters call the
    same SQL functions with the same arguments."""

    def rpc(self, function: str, params: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def claim(self, event_id: UUID, agent: str, worker: str | None = None) -> Claim:
        rows = self.rpc("claim_delivery", {"p_event_id": event_id, "p_agent": agent, "p_worker": worker})
        return claim_from_row(rows[0] if rows else None)

    def claim_next(self, agent: str, worker: str | None = None, project_id: UUID | None = None, *,
                   drainer: UUID | None = None, hold_ms: int = 0) -> Claim | None:
        params: dict[str, Any] = {"p_agent": agent, "p_worker": worker, "p_project_id": project_id}
        if drainer is not None:
            params.update(p_drainer=drainer, p_hold_ms=hold_ms)
        rows = self.rpc("claim_next", params)
        return claim_from_row(rows[0]) if rows else None

    def end_drain(self, drainer: UUID, agent: str, project_id: UUID | None, *, ring_next: bool) -> int:
        return int(self.rpc("end_drain", {"p_drainer": drainer, "p_agent": agent, "p_project_id": project_id,
                                          "p_ring_next": ring_next}) or 0)

    def drain_hold(self, drainer: UUID, agent: str, project_id: UUID | None, *, stays_ms: int,
                   hold_ms: int) -> int:
        return int(self.rpc("drain_hold", {"p_drainer": drainer, "p_agent": agent, "p_project_id": project_id,
                                           "p_stays_ms": stays_ms, "p_hold_ms": hold_ms}) or 0)


    def complete(self, claim: Claim, writes: Sequence[Write], events: Sequence[DomainEvent]) -> Completion:
        result = self.rpc("complete_delivery", {
            "p_delivery_id": claim.delivery_id,
            "p_claim_token": claim.claim_token,
            "p_writes": [w.to_json() for w in writes],
            "p_events": [e.to_record() for e in events],
        })
        return Completion(result["completed"], result.get("written", 0), result.get("published", 0),
                          result.get("reason"))

    def complete_shadow(self, claim: Claim, decision: Mapping[str, Any], model: str | None) -> Completion:
        result = self.rpc("complete_shadow", {"p_delivery_id": claim.delivery_id, "p_claim_token": claim.claim_token,
                                              "p_decision": dict(decision), "p_model": model})
        return Completion(result["completed"], 0, 0, result.get("reason"))

    def fail(self, claim: Claim, error: str, *, retriable: bool, retry_after: float | None = None,
             infrastructure: bool | None = None) -> FailureRecord:
        result = self.rpc("fail_delivery", {
            "p_delivery_id": claim.delivery_id,
            "p_claim_token": claim.claim_token,
            "p_error": error,
            "p_retriable": retriable,
            "p_retry_after_seconds": retry_after,
            "p_infrastructure": infrastructure,
        })
        return FailureRecord(result["recorded"], result.get("status"), result.get("attempts"), result)

    def publish(self, events: Sequence[DomainEvent]) -> int:
        return int(self.rpc("publish_events", {"p_events": [e.to_record() for e in events]}))
