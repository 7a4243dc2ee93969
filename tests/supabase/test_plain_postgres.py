"""The migrations on a plain PostgreSQL without pgvector (the Debian server,
where the machine has one): they apply, twice, and similarity search falls
back to real[] vectors. Skipped where no such server is installed."""

from __future__ import annotations

import glob
import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shared.postgres_store import PostgresStore
from shared.store import Write
from signalsloop.db import migrate, migrations

SERVERS = sorted(glob.glob("/usr/lib/postgresql/1[5-8]/bin/initdb"))


@pytest.fixture(scope="module")
def plain_url(pg_server: str) -> Iterator[str]:
    if not SERVERS:
        pytest.skip("no Debian PostgreSQL 15-18 server on this machine")
    bindir = Path(SERVERS[0]).parent
    user = "embedded_postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="plain-pg-"))
    os.chown(root, pwd.getpwnam(user).pw_uid, -1)
    data, run = root / "data", dict(user=user, check=True, capture_output=True)
    subprocess.run([bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], **run)  # type: ignore[call-overload]
    subprocess.run([bindir / "pg_ctl", "-D", data, "-w", "-l", root / "log", "-o",  # type: ignore[call-overload]
                    f"-p 55433 -k {root} -c listen_addresses=''", "start"], **run)
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port=55433"
    finally:
        subprocess.run([bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"], user=user, capture_output=True)


def test_migrations_apply_twice_and_similarity_falls_back_to_arrays(plain_url: str) -> None:
    assert migrate(plain_url) == [m.version for m in migrations()]
    assert migrate(plain_url) == []
    with psycopg.connect(plain_url, autocommit=True) as conn:
        assert conn.execute("select 1 from pg_extension where extname = 'vector'").fetchone() is None
        user = conn.execute("insert into auth.users (email) values ('a@b.c') returning id").fetchone()[0]  # type: ignore[index]
        project = conn.execute("insert into projects (name, slug, owner_id) values ('A', 'a', %s) returning id",
                               (user,)).fetchone()[0]  # type: ignore[index]
        near, far = (conn.execute("insert into posts (project_id, title) values (%s, %s) returning id",
                                  (project, t)).fetchone()[0] for t in ("near", "far"))  # type: ignore[index]
        assert conn.execute("select count(*) from event_deliveries").fetchone()[0] == 6  # type: ignore[index]
    store = PostgresStore(plain_url)
    try:
        rows = [{"feedback_id": near, "project_id": project, "model": "m", "dims": 3, "embedding": [0.6, 0.8, 0.0]},
                {"feedback_id": far, "project_id": project, "model": "m", "dims": 3, "embedding": [0.0, 0.0, 1.0]}]
        store.rpc("apply_writes", {"p_writes": [Write("feedback_embeddings", rows, ("feedback_id",)).to_json()]})
        found = store.rpc("match_feedback", {"p_project_id": project, "p_model": "m", "p_embedding": [0.8, 0.6, 0.0],
                                             "p_limit": 5, "p_min_similarity": 0.5})
    finally:
        store.close()
    assert [(r["feedback_id"], round(r["similarity"], 2)) for r in found] == [(near, 0.96)]
