"""``signalsloop db usage``: what the database holds, what a feedback item
costs, and where the current rate takes it, with and without retention.

Sizes come from the catalog (``pg_total_relation_size``: heap, TOAST and
indexes; ``pg_database_size``). A table's cost per day is its average bytes
per row times the rows it gained over the window; a table with a retention
period stops growing once it holds that many days (pruned rows' space is
reused, so it never shrinks below its current size either).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from signalsloop.operations.query import query

# The column that says when a row arrived, for tables that have one.
TIME_COLUMNS = ("created_at", "started_at", "analyzed_at", "calculated_at", "updated_at", "joined_at")
# The backbone_config period that bounds each table (see the retention migration).
RETENTION = {"events": "retain_events", "event_deliveries": "retain_succeeded",
             "delivery_attempts": "retain_succeeded", "notifications": "retain_notifications",
             "shadow_results": "retain_shadow_results", "prune_runs": None}
LEDGER_TABLES = ("events", "event_deliveries", "delivery_attempts", "notifications", "shadow_results", "prune_runs")
HORIZONS = (30, 365)


@dataclass(frozen=True)
class TableUsage:
    table: str
    bytes: int
    rows: int
    rows_in_window: int
    bytes_per_day: float
    retention_days: float | None

    def projected(self, days: int, *, retention: bool) -> float:
        grown = self.bytes + self.bytes_per_day * days
        if not retention or self.retention_days is None:
            return grown
        return max(float(self.bytes), min(grown, self.bytes_per_day * self.retention_days))


def tables(conn: psycopg.Connection[Any], window: timedelta = timedelta(days=1)) -> list[TableUsage]:
    """Every table in ``public``, largest first."""
    found = query(conn, """
        select c.relname as table, pg_total_relation_size(c.oid) as bytes,
               (select a.attname from pg_attribute a
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                   and a.attname = any(%s) and a.atttypid = 'timestamptz'::regtype
                 order by array_position(%s, a.attname::text) limit 1) as time_column
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
         order by 2 desc, 1""", (list(TIME_COLUMNS), list(TIME_COLUMNS)))
    periods = retention_days(conn)
    days = window.total_seconds() / 86400
    result = []
    for row in found:
        rows, recent = _counts(conn, row["table"], row["time_column"], window)
        per_row = row["bytes"] / rows if rows else 0.0
        result.append(TableUsage(row["table"], int(row["bytes"]), rows, recent,
                                 per_row * recent / days if days else 0.0, periods.get(row["table"])))
    return result


def _counts(conn: psycopg.Connection[Any], table: str, column: str | None, window: timedelta) -> tuple[int, int]:
    if column is None:
        stmt = sql.SQL("select count(*) as n, 0 as recent from public.{}").format(sql.Identifier(table))
        row = query(conn, stmt.as_string(conn))[0]
    else:
        stmt = sql.SQL("select count(*) as n, count(*) filter (where {} >= now() - %s) as recent "
                       "from public.{}").format(sql.Identifier(column), sql.Identifier(table))
        row = query(conn, stmt.as_string(conn), (window,))[0]
    return int(row["n"]), int(row["recent"])


def retention_days(conn: psycopg.Connection[Any]) -> dict[str, float | None]:
    """Each ledger table's retention in days (None: kept forever)."""
    cfg = query(conn, "select * from public.backbone_config")[0]
    out: dict[str, float | None] = {}
    for table, column in RETENTION.items():
        period = cfg.get(column) if column else None
        out[table] = period.total_seconds() / 86400 if isinstance(period, timedelta) else None
    out["prune_runs"] = 7.0
    return out


def report(conn: psycopg.Connection[Any], limit_mb: float = 500, window: timedelta = timedelta(days=1)
           ) -> dict[str, Any]:
    """The figures ``signalsloop db usage`` prints."""
    rows = tables(conn, window)
    db_bytes = int(query(conn, "select pg_database_size(current_database()) as b")[0]["b"])
    items = int(query(conn, "select count(*) as n from public.posts where created_at >= now() - %s",
                      (window,))[0]["n"])
    per_day = sum(t.bytes_per_day for t in rows)
    limit = limit_mb * 1024 * 1024
    projections: dict[str, dict[str, int | None]] = {}
    for mode in ("with_retention", "without_retention"):
        keep = mode == "with_retention"
        projections[mode] = {
            f"{d}d_bytes": round(db_bytes + sum(t.projected(d, retention=keep) - t.bytes for t in rows))
            for d in HORIZONS}
        projections[mode]["days_until_limit"] = _days_until(db_bytes, rows, limit, retention=keep)
    return {
        "database_bytes": db_bytes, "limit_bytes": round(limit), "window_hours": window.total_seconds() / 3600,
        "feedback_items_in_window": items, "bytes_per_day": round(per_day),
        "bytes_per_feedback_item": round(per_day * window.total_seconds() / 86400 / items) if items else None,
        "projection": projections,
        "tables": [asdict(t) for t in rows],
    }


def _days_until(db_bytes: int, rows: list[TableUsage], limit: float, *, retention: bool) -> int | None:
    """First day the database passes ``limit`` at the current rate (None: not within ten years)."""
    for day in range(0, 3651):
        if db_bytes + sum(t.projected(day, retention=retention) - t.bytes for t in rows) > limit:
            return day
    return None


# --- for the benchmark ---------------------------------------------------------------


def ledger_bytes(conn: psycopg.Connection[Any]) -> int:
    """Bytes of the event backbone's tables (events, deliveries, attempts, notifications...)."""
    row = query(conn, "select coalesce(sum(pg_total_relation_size(to_regclass('public.' || t))), 0) as b "
                      "from unnest(%s::text[]) t", (list(LEDGER_TABLES),))[0]
    return int(row["b"])


def per_item_bytes(conn: psycopg.Connection[Any], since_hours: float) -> dict[str, float]:
    """Bytes each table gained per feedback item over the last ``since_hours``."""
    window = timedelta(hours=since_hours)
    rep = report(conn, window=window)
    items = rep["feedback_items_in_window"] or 1
    days = window.total_seconds() / 86400
    return {t["table"]: round(t["bytes_per_day"] * days / items, 1) for t in rep["tables"] if t["bytes_per_day"]}


def steady_state(per_item: dict[str, float], items_per_day: float, retention: dict[str, float | None] | None = None
                 ) -> dict[str, Any]:
    """Where the ledger levels off at ``items_per_day`` with the given (default)
    retention, and what the rest (the product's own data) adds per day."""
    periods = retention or {"events": 365, "event_deliveries": 30, "delivery_attempts": 30, "notifications": 30,
                            "shadow_results": 30, "prune_runs": 7}
    ledger = {t: b for t, b in per_item.items() if t in periods}
    level = sum(b * items_per_day * (periods[t] or 0) for t, b in ledger.items())
    return {"items_per_day": items_per_day,
            "ledger_bytes_per_item": round(sum(ledger.values())),
            "other_bytes_per_item": round(sum(b for t, b in per_item.items() if t not in periods)),
            "ledger_levels_off_at_mb": round(level / 1024 / 1024, 1),
            "ledger_after_365d_without_retention_mb":
                round(sum(ledger.values()) * items_per_day * 365 / 1024 / 1024, 1)}
