"""pg_stat_statements in tests: every test database shares the cluster's statistics."""

from typing import Any


def pgss_reset_own_database(conn: Any) -> None:
    """Reset pg_stat_statements for this database only (others share the cluster).

    `conn`: anything with execute(), a psycopg connection or a Django cursor."""
    conn.execute(
        "SELECT pg_stat_statements_reset(0, "
        "(SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
    )
