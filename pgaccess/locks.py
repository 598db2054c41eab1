"""Session advisory locks: the key layout, taking and releasing, and who holds one.

A key is (LOCK_NAMESPACE, hashtext(name)); the lock lives as long as the session that took
it. `lock_holders` finds the holder's backend through pg_locks, which shows the two ints
as classid and objid (objsubid 2 marks the two-int form), so both sides read the one
layout written here.
"""

import psycopg
from psycopg import sql

from .marker import execute

# First half of the two-int advisory lock key: "dbar" in ASCII, so other users of advisory
# locks on the same database do not collide with ours.
LOCK_NAMESPACE = 0x64626172

_HOLDERS = """
    SELECT l.pid
    FROM pg_locks AS l
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
      AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
      AND l.classid = {namespace}::oid AND l.objid = hashtext({key})::oid
"""


def lock_try(conn: psycopg.Connection, name: str) -> bool:
    """Take the lock `name` for this session, at once or not at all."""
    row = execute(
        conn, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_NAMESPACE, name]
    ).fetchone()
    return bool(row and row[0])


def lock_release(conn: psycopg.Connection, name: str) -> None:
    execute(conn, "SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_NAMESPACE, name])


def lock_holders(name: str) -> sql.Composed:
    """SELECT pid of the backends that hold lock `name` in the current database, to join."""
    return sql.SQL(_HOLDERS).format(namespace=sql.Literal(LOCK_NAMESPACE), key=sql.Literal(name))
