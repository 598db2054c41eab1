"""Private PostgreSQL 15 servers for the tests of what the shared cluster must not change
(pg_qualstats preloaded, the server's log, statistics objects)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.dbarchitect.private_server import PrivateServer, private_server

# The major version the project supports, whose binaries services.sh installs.
BINDIR = Path("/usr/lib/postgresql/15/bin")
QUALSTATS_PRELOAD = {
    "shared_preload_libraries": "pg_stat_statements,pg_qualstats",
    "pg_qualstats.sample_rate": "1",
}


def pg15_bindir() -> Path:
    if not (BINDIR / "postgres").exists():
        pytest.fail(f"PostgreSQL 15 binaries not found in {BINDIR}: run make services")
    return BINDIR


@contextmanager
def qualstats_server(
    setup: Sequence[str],
) -> Iterator[tuple[PrivateServer, psycopg.Connection]]:
    """A server preloading pg_qualstats that samples every statement, both extensions
    created in database postgres and `setup` run there; with an autocommit connection to
    it that binds no statement on the server (each run a custom plan, its constants seen)."""
    with (
        private_server(pg15_bindir(), settings=QUALSTATS_PRELOAD) as server,
        psycopg.connect(server.url("postgres"), autocommit=True) as conn,
    ):
        conn.prepare_threshold = None
        for statement in [
            "CREATE EXTENSION pg_stat_statements",
            "CREATE EXTENSION pg_qualstats",
            *setup,
        ]:
            conn.execute(statement)
        yield server, conn
