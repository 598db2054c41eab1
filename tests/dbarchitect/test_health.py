"""Index health checks against a real schema with the problems planted in it."""

import pytest

from dbarchitect.health import (
    duplicate_indexes,
    health_check,
    invalid_indexes,
    missing_fk_indexes,
    unused_indexes,
)
from pgaccess.ddl import index_name


@pytest.fixture
def conn(workload_conn):
    return workload_conn


def by_index(findings):
    return {f.index: f for f in findings}


def test_unused_indexes_report_an_index_never_scanned(conn):
    found = by_index(unused_indexes(conn, min_size_bytes=0))
    finding = found["pl_behavior_log_event_type"]
    assert finding.kind == "drop_index"
    assert finding.columns == ["event_type"]
    assert finding.ddl == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."pl_behavior_log_event_type"'
    assert finding.reason.startswith("unused: 0 scans")
    assert finding.size_bytes > 0


def test_unused_indexes_skip_unique_constraints_primary_keys_and_fk_indexes(conn):
    found = by_index(unused_indexes(conn, min_size_bytes=0))
    for enforced in ("pl_user_pkey", "pl_user_email_key", "pl_payment_pkey"):
        assert enforced not in found
    # Serves the foreign key to pl_user: deletes of users would scan the logs without it.
    assert "pl_behavior_log_user_id" not in found


def test_unused_indexes_honour_the_size_threshold(conn):
    size = by_index(unused_indexes(conn))["pl_behavior_log_event_type"].size_bytes
    assert "pl_behavior_log_event_type" not in by_index(
        unused_indexes(conn, min_size_bytes=size + 1)
    )


def test_unused_indexes_honour_max_scans(conn):
    conn.execute("CREATE TABLE pl_scanned (a int)")
    try:
        conn.execute("INSERT INTO pl_scanned SELECT generate_series(1, 1000)")
        conn.execute("CREATE INDEX pl_scanned_a ON pl_scanned (a)")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT count(*) FROM pl_scanned WHERE a = 3").fetchall()
        conn.execute("RESET enable_seqscan")
        conn.execute("SELECT pg_stat_force_next_flush()")  # publish this session's counters
        assert "pl_scanned_a" not in by_index(unused_indexes(conn, max_scans=0))
        assert "pl_scanned_a" in by_index(unused_indexes(conn, max_scans=1))
    finally:
        conn.execute("DROP TABLE pl_scanned")


def test_duplicate_indexes_report_the_newer_of_two_identical_indexes(conn):
    found = by_index(duplicate_indexes(conn))
    assert "pl_behavior_log_timestamp_dup" in found
    assert "pl_behavior_log_timestamp" not in found  # one of the pair is kept
    reason = found["pl_behavior_log_timestamp_dup"].reason
    assert "identical to index pl_behavior_log_timestamp" in reason


def test_duplicate_indexes_report_a_prefix_but_never_a_unique_one(conn):
    conn.execute("CREATE TABLE pl_prefix (a int, b int, c int)")
    try:
        conn.execute("CREATE INDEX pl_prefix_a ON pl_prefix (a)")
        conn.execute("CREATE INDEX pl_prefix_a_b ON pl_prefix (a, b)")
        conn.execute("CREATE INDEX pl_prefix_b_desc ON pl_prefix (b DESC)")
        conn.execute("CREATE INDEX pl_prefix_b_c ON pl_prefix (b, c)")  # b asc: not covering
        conn.execute("CREATE UNIQUE INDEX pl_prefix_c_uniq ON pl_prefix (c)")
        conn.execute("CREATE INDEX pl_prefix_c_a ON pl_prefix (c, a)")
        conn.execute("CREATE INDEX pl_prefix_a_part ON pl_prefix (a) WHERE b IS NULL")
        found = by_index(duplicate_indexes(conn))
        assert "a prefix of index pl_prefix_a_b" in found["pl_prefix_a"].reason
        assert "pl_prefix_b_desc" not in found  # sort order differs
        assert "pl_prefix_c_uniq" not in found  # enforces uniqueness
        assert "pl_prefix_a_part" not in found  # partial: different predicate
        assert "pl_prefix_a_b" not in found
    finally:
        conn.execute("DROP TABLE pl_prefix")


def test_invalid_indexes_report_a_failed_concurrent_build(conn):
    found = by_index(invalid_indexes(conn))
    finding = found["pl_user_created_at_uniq"]
    assert finding.kind == "invalid_index"
    assert finding.ddl == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."pl_user_created_at_uniq"'


def test_missing_fk_indexes_report_a_foreign_key_without_an_index(conn):
    found = {(f.table, tuple(f.columns)): f for f in missing_fk_indexes(conn)}
    finding = found[("pl_payment", ("user_id",))]
    assert finding.kind == "fk_index"
    assert finding.ddl == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "pl_payment_user_id_fk_idx" '
        'ON "public"."pl_payment" ("user_id")'
    )
    assert ("pl_behavior_log", ("user_id",)) not in found  # has its index


def test_missing_fk_indexes_skip_small_tables(conn):
    tables = {f.table for f in missing_fk_indexes(conn, min_table_rows=1_000_000)}
    assert "pl_payment" not in tables


def test_health_check_reports_each_index_once(conn):
    findings = health_check(conn, min_unused_bytes=0)
    fingerprints = [f.fingerprint for f in findings]
    assert len(fingerprints) == len(set(fingerprints))
    kinds = {(f.kind, f.index) for f in findings}
    assert ("invalid_index", "pl_user_created_at_uniq") in kinds
    assert ("drop_index", "pl_user_created_at_uniq") not in kinds
    assert ("drop_index", "pl_behavior_log_timestamp_dup") in kinds
    assert ("fk_index", "pl_payment_user_id_fk_idx") in kinds


def test_index_name_is_deterministic_and_fits_63_bytes():
    long = index_name(
        "a_table_with_a_rather_long_name", ["first_long_column", "second"], suffix="idx"
    )
    assert len(long.encode()) <= 63 and long.endswith("_idx")
    assert long == index_name(
        "a_table_with_a_rather_long_name", ["first_long_column", "second"], suffix="idx"
    )
    assert long != index_name(
        "a_table_with_a_rather_long_name", ["first_long_column", "third"], suffix="idx"
    )
    assert index_name("t", ["a"], suffix="fk_idx") == "t_a_fk_idx"


def test_health_check_leaves_out_the_tables_it_is_told_to_skip(conn):
    tables = {f.table for f in health_check(conn, min_unused_bytes=0)}
    assert "pl_payment" in tables
    skipped = health_check(conn, min_unused_bytes=0, skip_tables=["pl_payment", "pl_user"])
    assert not {"pl_payment", "pl_user"} & {f.table for f in skipped}
    assert "pl_behavior_log" in {f.table for f in skipped}
