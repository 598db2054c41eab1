"""Private PostgreSQL 15 servers for the tests of what the shared cluster must not change
(pg_qualstats preloaded, the server's log, statistics objects)."""

from pathlib import Path

import pytest

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
