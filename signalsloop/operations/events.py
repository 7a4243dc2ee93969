"""Operator queries over the event log: tail, publish, chain and replay.

Functions return plain dicts and lists (the CLI only formats them) and raise
:class:`~shared.errors.SignalsLoopError` subclasses with terminal-ready messages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
from pydantic import ValidationError

from shared.errors import BadRequest, NotFound
from shared.events import ALL_EVENT_TYPES, DomainEvent, EventMetadata
from shared.store import Store
from shared.text import is_valid_unicode
from signalsloop.operations.query import parse_uuid, query

EVENT_COLUMNS = """
  e.id, e.type, e.aggregate_type, e.aggregate_id, e.payload, e.version, e.created_at,
  e.metadata ->> 'project_id' as project_id,
  e.metadata ->> 'correlation_id' as correlation_id,
  e.metadata ->> 'causation_id' as causation_id,
  coalesce((e.metadata ->> 'depth')::int, 0) as depth,
  e.metadata ->> 'producer' as producer
"""

# --- tail ---------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    types: tuple[str, ...] = ()
    project: UUID | None = None
    since: datetime | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        conds = ["true"]
        if self.types:
            conds.append("e.type = any(%(types)s)")
        if self.project:
            conds.append("e.metadata ->> 'project_id' = %(project)s")
        if self.since:
            conds.append("e.created_at >= %(since)s")
        params = {"types": list(self.types), "project": str(self.project) if self.project else None,
                  "since": self.since}
        return " and ".join(conds), params


def recent_events(conn: psycopg.Connection[Any], flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` matching events, oldest first."""
    where, params = flt.where()
    rows = query(conn, f"select {EVENT_COLUMNS} from public.events e where {where} "
                       "order by e.created_at desc, e.id desc limit %(limit)s", {**params, "limit": limit})
    return rows[::-1]


def events_after(conn: psycopg.Connection[Any], flt: EventFilter, after: datetime, *,
                 exclude: Sequence[UUID] = (), limit: int = 1000) -> list[dict[str, Any]]:
    """Matching events stamped after ``after``, oldest first, except ``exclude``."""
    where, params = flt.where()
    return query(conn, f"select {EVENT_COLUMNS} from public.events e where {where} and e.created_at > %(after)s "
                       "and not (e.id = any(%(exclude)s)) order by e.created_at, e.id limit %(limit)s",
                 {**params, "after": after, "exclude": list(exclude), "limit": limit})


@dataclass
class EventTail:
    """Follows new events by polling on ``created_at``.

    ``created_at`` is the inserting transaction's start time, so an event can
    become visible after later-stamped ones. Each poll therefore looks back
    ``lookback`` before the previous poll and skips ids already accounted for
    (printed, or older than the backlog asked for). Only an event whose
    transaction stayed open longer than ``lookback`` can be missed.
    """

    conn: psycopg.Connection[Any]
    flt: EventFilter
    lookback: timedelta = timedelta(seconds=10)
    _seen: dict[UUID, datetime] = field(default_factory=dict)
    _last_poll: datetime | None = None

    def backlog(self, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` matching events; older ones are never shown later."""
        self._last_poll = _db_now(self.conn)
        rows = recent_events(self.conn, self.flt, limit)
        self._remember(rows)
        self._remember(events_after(self.conn, self.flt, self._last_poll - self.lookback, limit=100_000))
        return rows

    def poll(self) -> list[dict[str, Any]]:
        """Matching events that became visible since the last call, oldest first."""
        now = _db_now(self.conn)
        since = (self._last_poll or now) - self.lookback
        rows = events_after(self.conn, self.flt, since, exclude=list(self._seen))
        self._remember(rows)
        self._seen = {k: v for k, v in self._seen.items() if v > since - self.lookback}
        self._last_poll = now
        return rows

    def _remember(self, rows: Iterable[dict[str, Any]]) -> None:
        self._seen.update((row["id"], row["created_at"]) for row in rows)


def _db_now(conn: psycopg.Connection[Any]) -> datetime:
    value: datetime = query(conn, "select clock_timestamp() as now")[0]["now"]
    return value


# --- publish --------------------------------------------------------------------


def build_root_event(event_type: str, project: str, payload_json: str, *, aggregate_type: str | None = None,
                     aggregate_id: str | None = None, force: bool = False) -> DomainEvent:
    """A root event as an operator injects it (producer ``cli``, depth 0)."""
    if event_type not in ALL_EVENT_TYPES and not force:
        raise BadRequest(f"unknown event type {event_type!r} (use --force to publish a custom type)")
    payload = parse_payload(payload_json)
    event_id = uuid4()
    kind = aggregate_type or event_type.split(".", 1)[0]
    try:
        return DomainEvent(
            id=event_id, type=event_type, aggregate_type=kind,
            aggregate_id=parse_uuid(aggregate_id, "aggregate id") if aggregate_id else uuid4(),
            payload=payload,
            metadata=EventMetadata(project_id=parse_uuid(project, "project id"), correlation_id=event_id,
                                   depth=0, producer="cli"),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"invalid event: {problems}") from None


def parse_payload(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"--payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest("--payload is nested too deeply") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise BadRequest(f"--payload is not valid JSON here: {str(exc).split(':')[0]}") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"--payload must be a JSON object, not {type(payload).__name__}")
    _check_values(payload)
    return payload


#: Levels of nesting a payload may have (events are read and serialized recursively).
MAX_PAYLOAD_DEPTH = 64


def _check_values(payload: dict[str, Any]) -> None:
    """Refuse, by field, what ``jsonb`` cannot hold (a NUL, a lone UTF-16
    surrogate, both of which JSON can write) and nesting past
    :data:`MAX_PAYLOAD_DEPTH`, instead of failing in the database or the
    serializer. Walked with a stack: a recursive walk would itself overflow."""
    stack: list[tuple[Any, str, int]] = [(payload, "payload", 1)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise BadRequest(f"--payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels (at {where[:200]})")
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            path = f"{where}.{key}" if isinstance(value, dict) else f"{where}[{key}]"
            for text, what in ((key, "a key in " + where), (item, path)):
                if isinstance(text, str) and ("\x00" in text or not is_valid_unicode(text)):
                    raise BadRequest(f"--payload: {what[:200]} holds a NUL or a lone UTF-16 surrogate, "
                                     "which PostgreSQL cannot store")
            if isinstance(item, dict | list):
                stack.append((item, path, depth + 1))


def _finite(text: str) -> float:
    """A JSON number Python reads as infinity (``1e999``): jsonb would store it as null."""
    value = float(text)
    if math.isinf(value):
        raise BadRequest(f"--payload holds {text[:40]}, which is too large for a number")
    return value


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (PostgreSQL would store them as null)."""
    raise BadRequest(f"--payload holds {name}, which JSON does not allow")


# Event families whose aggregate is a row the agents will read.
AGGREGATE_TABLES = {"feedback": "posts", "spec": "specs"}


def publish_event(conn: psycopg.Connection[Any], store: Store, event: DomainEvent, *, force: bool = False) -> UUID:
    """Publish ``event``; unless ``force``, its project must exist, and so must
    the post or spec it is about (agents would dead-letter it otherwise)."""
    if not force and not query(conn, "select 1 from public.projects where id = %s", (event.project_id,)):
        raise NotFound(f"unknown project {event.project_id} (use --force to publish anyway)")
    table = AGGREGATE_TABLES.get(event.aggregate_type)
    if not force and table and not query(conn, f"select 1 from public.{table} where id = %s and project_id = %s",
                                         (event.aggregate_id, event.project_id)):
        raise NotFound(f"{event.type} is about {table} row {event.aggregate_id}, which project {event.project_id} "
                       "does not have (pass --aggregate-id, or --force to publish anyway)")
    store.publish([event])
    return event.id


# --- chain ----------------------------------------------------------------------


def chain(conn: psycopg.Connection[Any], correlation_id: str) -> list[dict[str, Any]]:
    """Every event of a chain (by its correlation id, or the id of any event in
    it), ordered by depth then time, each with its ``deliveries``."""
    wanted = parse_uuid(correlation_id, "correlation id")
    events = _chain_events(conn, str(wanted))
    if not events:
        found = query(conn, "select metadata ->> 'correlation_id' as cid from public.events where id = %s", (wanted,))
        if found and found[0]["cid"]:
            events = _chain_events(conn, found[0]["cid"])
    if not events:
        raise NotFound(f"no event has correlation id {wanted}")
    by_event: dict[UUID, list[dict[str, Any]]] = {e["id"]: [] for e in events}
    for delivery in _deliveries(conn, list(by_event)):
        by_event[delivery.pop("event_id")].append(delivery)
    for event in events:
        event["deliveries"] = by_event[event["id"]]
    return events


def _chain_events(conn: psycopg.Connection[Any], cid: str) -> list[dict[str, Any]]:
    return query(conn, f"select {EVENT_COLUMNS} from public.events e where e.metadata ->> 'correlation_id' = %s "
                       "order by depth, e.created_at, e.id", (cid,))


def _deliveries(conn: psycopg.Connection[Any], event_ids: Sequence[UUID]) -> list[dict[str, Any]]:
    """Deliveries with the duration of their latest attempt, in milliseconds."""
    return query(conn, """
        select d.event_id, d.id, d.agent, d.status, d.attempts, d.max_attempts, d.last_error, d.replay_count,
               (select extract(epoch from a.finished_at - a.started_at) * 1000
                  from public.delivery_attempts a where a.delivery_id = d.id
                 order by a.attempt desc limit 1)::float8 as duration_ms
          from public.event_deliveries d
         where d.event_id = any(%s)
         order by d.agent""", (list(event_ids),))


def nest(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Arrange a chain as a forest by causation: each event gains ``children``.
    An event whose cause is not in the chain becomes a root."""
    nodes = {e["id"]: {**e, "children": []} for e in events}
    roots: list[dict[str, Any]] = []
    for event in events:
        cause = event.get("causation_id")
        parent = nodes.get(UUID(cause)) if cause else None
        (parent["children"] if parent is not None else roots).append(nodes[event["id"]])
    return roots


# --- replay ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayRequest:
    event: UUID | None = None
    dead: bool = False
    agent: str | None = None
    type: str | None = None
    project: UUID | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def filters(self) -> dict[str, Any]:
        return {"p_type": self.type, "p_project_id": self.project, "p_from": self.start, "p_to": self.end}


def replay(conn: psycopg.Connection[Any], req: ReplayRequest) -> int:
    """Send matching deliveries back to pending; returns how many."""
    if req.event is None and not req.dead and req.agent is None and not any(
            v is not None for v in req.filters.values()):
        raise BadRequest("replay needs at least one filter: --event, --dead, --type, --agent, --project, --from, --to")
    if req.agent is not None and not query(conn, "select 1 from public.agents where name = %s", (req.agent,)):
        raise NotFound(f"unknown agent {req.agent!r}")
    if req.event is not None and not query(conn, "select 1 from public.events where id = %s", (req.event,)):
        raise NotFound(f"unknown event {req.event}")
    others = any(v is not None for v in req.filters.values())
    params: tuple[Any, ...]
    if req.event is not None and not req.dead and not others:
        sql, params = "select public.replay_event(%s, %s) as n", (req.event, req.agent)
    elif req.dead and req.event is None and not others:
        sql, params = "select public.replay_dead(%s) as n", (req.agent,)
    else:
        sql = ("select public.replay_deliveries(p_event_id => %s, p_agent => %s, p_type => %s, p_project_id => %s,"
               " p_from => %s, p_to => %s, p_statuses => %s) as n")
        params = (req.event, req.agent, *req.filters.values(), ["dead"] if req.dead else None)
    return int(query(conn, sql, params)[0]["n"])
