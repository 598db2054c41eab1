"""Private PostgreSQL 15 servers for the pgaccess tests: what they read (pg_qualstats, the
server's log) needs settings the shared cluster must not change."""

from pathlib import Path

import pytest

from tests.dbarchitect.private_server import private_server  # noqa: F401 - used by the tests

# The major version the project supports, whose binaries services.sh installs.
BINDIR = Path("/usr/lib/postgresql/15/bin")
QUALSTATS_PRELOAD = {
    "shared_preload_libraries": "pg_stat_statements,pg_qualstats",
    "pg_qualstats.sample_rate": "1",
}


@pytest.fixture(scope="session")
def bindir() -> Path:
    if not (BINDIR / "postgres").exists():
        pytest.fail(f"PostgreSQL 15 binaries not found in {BINDIR}: run make services")
    return BINDIR
