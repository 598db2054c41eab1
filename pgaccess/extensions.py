"""Which extensions a session can use: hypopg reachable on the search_path, or why not."""

import psycopg

from .marker import execute


def extensions_on_path(conn: psycopg.Connection) -> None:
    """Append hypopg's schema to the session's search_path when the extension was created
    outside it: its functions are called unqualified, the workload's names resolve as before."""
    execute(
        conn,
        """
        SELECT set_config(
            'search_path',
            concat_ws(', ', nullif(current_setting('search_path'), ''), quote_ident(n.nspname)),
            false
        ) AS search_path
        FROM pg_extension AS e
        JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'hypopg' AND n.nspname <> ALL (current_schemas(true))""",
    )


def hypopg_problem(conn: psycopg.Connection) -> str | None:
    """Why this session cannot create hypothetical indexes, or None: hypopg is missing, or
    its schema is one the role may not use (its functions then do not resolve at all)."""
    row = execute(
        conn,
        """
        SELECT quote_ident(n.nspname), has_schema_privilege(n.oid, 'USAGE'),
               quote_ident(current_user)
        FROM pg_extension AS e
        JOIN pg_namespace AS n ON n.oid = e.extnamespace
        WHERE e.extname = 'hypopg'""",
    ).fetchone()
    if row is None:
        return (
            "extension hypopg is not installed on the target database: "
            "CREATE EXTENSION hypopg there (it needs the hypopg package on the server)"
        )
    schema, usable, user = row
    if not usable:
        return (
            f"role {user} cannot use extension hypopg: it is installed in schema {schema}, "
            f"on which the role has no USAGE privilege; GRANT USAGE ON SCHEMA {schema} TO {user}"
        )
    return None
