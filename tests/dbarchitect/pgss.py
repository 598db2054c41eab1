"""pg_stat_statements in tests: every test database shares the cluster's statistics."""

import psycopg


def pgss_reset_own_database(conn: psycopg.Connection) -> None:
    """Reset pg_stat_statements for this database only (others share the cluster)."""
    conn.execute(
        "SELECT pg_stat_statements_reset(0, "
        "(SELECT oid FROM pg_database WHERE datname = current_database()), 0)"
    )
