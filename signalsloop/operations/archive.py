"""Archive before delete: events as JSON lines (gzip), and back.

Each line is PostgreSQL's own text of ``to_jsonb(event)`` in UTC, so an
export, an import into another database and a second export give the same
bytes (gzip's header carries no time). Import inserts with ``on conflict (id)
do nothing`` and, unless asked, with triggers off
(``session_replication_role = replica``): an archived event does not ring
the agents again (the lines carry their metadata already, so the metadata
trigger is not needed either).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from shared.errors import BadRequest, ConfigurationError
from signalsloop.operations.query import query

GZIP_MAGIC = b"\x1f\x8b"
BATCH = 1000
REQUIRED = ("id", "type", "aggregate_type", "aggregate_id", "payload", "metadata", "version", "created_at")

EXPORT_SQL = """
select to_jsonb(e)::text from public.events e
 where e.created_at < %(before)s and (%(after)s::timestamptz is null or e.created_at >= %(after)s)
 order by e.created_at, e.id
"""


@dataclass(frozen=True)
class ImportResult:
    read: int
    inserted: int

    @property
    def skipped(self) -> int:
        return self.read - self.inserted


def export_events(conn: psycopg.Connection[Any], out: IO[bytes], before: datetime,
                  after: datetime | None = None) -> int:
    """Write matching events to ``out`` as JSON lines, oldest first; return how many."""
    count = 0
    with conn.transaction():
        conn.execute("set local timezone = 'UTC'")
        with conn.cursor(name="signalsloop_export") as cur:
            cur.itersize = 2000
            cur.execute(EXPORT_SQL, {"before": before, "after": after})
            for (line,) in cur:
                out.write(line.encode() + b"\n")
                count += 1
    return count


@contextmanager
def open_archive(path: Path, mode: str) -> Iterator[IO[bytes]]:
    """``path`` for writing (gzip when it ends in .gz, with no time in the
    header) or reading (gzip detected by its magic bytes)."""
    if mode == "w":
        if path.suffix == ".gz":
            with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                yield gz  # type: ignore[misc]
        else:
            with open(path, "wb") as plain:
                yield plain
        return
    try:
        raw_in = path.open("rb")  # closed by the with below; an open error gets its own message
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}") from None
    with raw_in:
        magic = raw_in.read(2)
        raw_in.seek(0)
        if magic == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw_in, mode="rb") as gz_in:
                yield gz_in  # type: ignore[misc]
        else:
            yield raw_in


def import_events(conn: psycopg.Connection[Any], source: IO[bytes], *, fan_out: bool = False) -> ImportResult:
    """Insert the events of a JSON-lines archive; events already present are
    skipped. All or nothing: a bad line aborts the import with its number."""
    columns = [r["attname"] for r in query(conn, """
        select attname from pg_attribute where attrelid = 'public.events'::regclass
           and attnum > 0 and not attisdropped order by attnum""")]
    insert = (f"insert into public.events ({', '.join(columns)}) "
              f"select {', '.join(columns)} from jsonb_populate_recordset(null::public.events, %s::jsonb) "
              "on conflict (id) do nothing")
    read = inserted = 0
    try:
        with conn.transaction():
            if not fan_out:
                _replica(conn)
            batch: list[str] = []
            for number, raw in enumerate(_lines(source), start=1):
                batch.append(_checked(raw, number, columns))
                read += 1
                if len(batch) >= BATCH:
                    inserted += _insert(conn, insert, batch)
                    batch = []
            if batch:
                inserted += _insert(conn, insert, batch)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise BadRequest(f"the archive is not a readable gzip file: {exc}") from None
    except OSError as exc:  # a device or a file that fails while read
        raise BadRequest(f"the archive could not be read: {exc.strerror or exc}") from None
    except psycopg.Error as exc:
        raise BadRequest(f"import failed, nothing was imported: {str(exc).strip()}") from None
    return ImportResult(read, inserted)


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    for raw in source:
        if raw.strip():
            yield raw.rstrip(b"\r\n")


def _checked(raw: bytes, number: int, columns: list[str]) -> str:
    """The line as text, once it is an event object with every column."""
    try:
        text = raw.decode()
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, a 4,300-digit integer, absurd nesting
        raise BadRequest(f"line {number}: not a JSON object ({str(exc)[:200] or type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise BadRequest(f"line {number}: not a JSON object")
    missing = [c for c in columns if c not in value]
    unknown = sorted(set(value) - set(columns))
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unknown {', '.join(unknown)}"] if unknown else [])
        raise BadRequest(f"line {number}: not an event row ({'; '.join(parts)})")
    for column in ("payload", "metadata"):  # the ledger takes any JSON there; agents read objects only
        if not isinstance(value[column], dict):
            raise BadRequest(f"line {number}: {column} must be a JSON object, not {type(value[column]).__name__}")
    return text


def _insert(conn: psycopg.Connection[Any], insert: str, batch: list[str]) -> int:
    cur = conn.execute(insert.encode(), ("[" + ",".join(batch) + "]",))
    return cur.rowcount


def _replica(conn: psycopg.Connection[Any]) -> None:
    """Triggers off for this transaction, so imported events fan out to nobody."""
    try:
        with conn.transaction():
            conn.execute("set local session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        raise ConfigurationError(
            "importing without fan-out needs permission to set session_replication_role (a superuser, "
            "Supabase's postgres role, or GRANT SET ON PARAMETER session_replication_role on PostgreSQL 15+); "
            "or pass --fan-out to let the imported events trigger the agents") from None
