"""pg_qualstats in the advisor: a slow query always run with one rare constant gets the
partial index for it only where pg_qualstats saw the constant; a boolean flag queried
for its rare value gets an index, one queried for its common value does not."""

from collections.abc import Iterator

import psycopg
import pytest

from dbarchitect.agent import run_audit
from dbarchitect.models import AuditRun
from tests.pgaccess.servers import QUALSTATS_PRELOAD, pg15_bindir

from .pgss import pgss_reset_own_database
from .private_server import private_server
from .test_bad_targets import targets

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 100_000
TABLE = [
    "CREATE EXTENSION pg_stat_statements",
    "CREATE EXTENSION hypopg",
    """CREATE TABLE ticket (
        id int PRIMARY KEY, status text NOT NULL, body text NOT NULL,
        urgent bool NOT NULL, archived bool NOT NULL)""",
    # 1% open, 2% urgent, 98% archived.
    f"""INSERT INTO ticket
        SELECT g, CASE WHEN g % 100 = 0 THEN 'open' ELSE 'closed' END, md5(g::text),
               g % 50 = 0, g % 50 <> 0
        FROM generate_series(1, {ROWS}) AS g""",
    "ANALYZE ticket",
]
OPEN = "SELECT id, body FROM ticket WHERE status = %s"
RARE_FLAG = "SELECT count(*) FROM ticket WHERE urgent IS TRUE"
COMMON_FLAG = "SELECT count(*) FROM ticket WHERE archived IS TRUE"


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, str]]:
    """Database seen with pg_qualstats, database blind without it: the same workload."""
    with private_server(pg15_bindir(), settings=QUALSTATS_PRELOAD) as server:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            for database in ("seen", "blind"):
                conn.execute(f"CREATE DATABASE {database}")
        for database in ("seen", "blind"):
            with psycopg.connect(
                server.url(database), autocommit=True, cursor_factory=psycopg.ClientCursor
            ) as conn:
                for statement in TABLE:
                    conn.execute(statement)
                if database == "seen":
                    conn.execute("CREATE EXTENSION pg_qualstats")
                pgss_reset_own_database(conn)
                for _ in range(20):
                    conn.execute(OPEN, ["open"]).fetchall()
                    conn.execute(RARE_FLAG).fetchall()
                    conn.execute(COMMON_FLAG).fetchall()
        yield {database: server.url(database) for database in ("seen", "blind")}


def _indexes(audit: AuditRun) -> list[tuple[list[str], str | None]]:
    return [
        (list(log.columns), log.details.get("where"))
        for log in audit.optimizations.filter(kind="index")
    ]


def test_a_rare_constant_always_used_gets_its_partial_index_only_with_pg_qualstats(server):
    with targets(**server):
        seen = run_audit(target="seen", verify=False)
        blind = run_audit(target="blind", verify=False)
    assert seen.status == blind.status == AuditRun.Status.SUCCEEDED, (seen.error, blind.error)
    assert seen.report["qualstats"]["state"] == "ready"
    assert blind.report["qualstats"]["state"] == "not_created"
    partial = [where for _, where in _indexes(seen) if where and "status" in where]
    assert partial == ["status = 'open'"], _indexes(seen)
    # Costed with the constant the workload uses (what verification then measures too).
    log = seen.optimizations.get(details__where="status = 'open'")
    assert any("'open'" in text for text in log.details["statements"].values())
    # Without pg_qualstats the constant is $1: the plain index or nothing, never partial.
    assert not [where for _, where in _indexes(blind) if where and "status" in where]


def test_a_flag_gets_an_index_for_its_rare_value_and_none_for_its_common_one(server):
    with targets(**server):
        audit = run_audit(target="seen", verify=False)
    assert audit.status == AuditRun.Status.SUCCEEDED, audit.error
    keyed = [(columns, where) for columns, where in _indexes(audit)]
    assert any('"urgent"' in columns or (where and "urgent" in where) for columns, where in keyed)
    assert not any(
        '"archived"' in columns or (where and "archived" in where) for columns, where in keyed
    ), keyed
