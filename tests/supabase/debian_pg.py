"""A throwaway Debian PostgreSQL 15-18 cluster (initdb + pg_ctl from
/usr/lib/postgresql/<v>/bin), on a unix socket in its own temp directory, for
tests of the migrations on the servers users run. Skipped where none is
installed; .ci/run installs postgresql-15 and postgresql-15-cron."""

from __future__ import annotations

import glob
import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SERVERS = sorted(glob.glob("/usr/lib/postgresql/1[5-8]/bin/initdb"))


def extension_installed(name: str) -> bool:
    """The extension's files are in the Debian server's share directory."""
    if not SERVERS:
        return False
    version = Path(SERVERS[0]).parent.parent.name
    return Path(f"/usr/share/postgresql/{version}/extension/{name}.control").exists()


@contextmanager
def debian_cluster(port: int, **settings: str) -> Iterator[str]:
    """Start a fresh cluster with these server settings (``-c name=value``);
    yield the URL of its ``postgres`` database; stop it afterwards."""
    if not SERVERS:
        pytest.skip("no Debian PostgreSQL 15-18 server on this machine")
    bindir = Path(SERVERS[0]).parent
    user = "embedded_postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="plain-pg-"))
    os.chown(root, pwd.getpwnam(user).pw_uid, -1)
    data, run = root / "data", dict(user=user, check=True, capture_output=True)
    options = " ".join([f"-p {port} -k {root} -c listen_addresses=''",
                        *(f"-c {name}={value}" for name, value in settings.items())])
    subprocess.run([bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres"], **run)  # type: ignore[call-overload]
    subprocess.run([bindir / "pg_ctl", "-D", data, "-w", "-l", root / "log", "-o", options, "start"], **run)  # type: ignore[call-overload]
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run([bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"], user=user, capture_output=True)
