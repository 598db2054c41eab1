"""The read-only runner: JSON-safe values and the session limits it sets."""

import datetime as dt
import decimal
import json
import uuid

import pytest
from psycopg.types.range import Range

from nlsql.guard import sql_check
from nlsql.jsonsafe import json_safe
from nlsql.runner import QueryFailed, _prepare_session, query_run, read_only_connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_values_of_every_common_type_come_back_json_safe():
    result = query_run(
        checked=sql_check(
            "SELECT CAST('00000000-0000-0000-0000-00000000002a' AS uuid) AS u, "
            "CAST('12345678901234567890.123' AS numeric) AS n, "
            "CAST('2026-01-02 03:04:05+00' AS timestamptz) AS ts, CAST('2026-01-02' AS date) AS d, "
            "CAST('03:04:05' AS time) AS t, CAST('1 day 2 hours' AS interval) AS i, "
            "CAST('\\x00ff' AS bytea) AS b, int4range(1, 5) AS r, ARRAY[1, NULL, 3] AS a, "
            "CAST('{\"k\": [1, 2.5]}' AS jsonb) AS j, CAST('NaN' AS float8) AS f, NULL AS z"
        )
    )
    row = dict(zip(result.columns, result.rows[0], strict=True))
    assert row == {
        "u": "00000000-0000-0000-0000-00000000002a",
        "n": "12345678901234567890.123",
        "ts": "2026-01-02T03:04:05+00:00",
        "d": "2026-01-02",
        "t": "03:04:05",
        "i": 93600.0,
        "b": "\\x00ff",
        "r": {"lower": 1, "upper": 5, "bounds": "[)", "empty": False},
        "a": [1, None, 3],
        "j": {"k": [1, 2.5]},
        "f": "nan",
        "z": None,
    }
    json.dumps(result.rows, allow_nan=False)  # strict JSON


def test_json_safe_handles_python_values_psycopg_returns():
    assert json_safe(memoryview(b"\x01\x02")) == "\\x0102"
    assert json_safe(decimal.Decimal("1.10")) == "1.10"
    assert json_safe(dt.timedelta(minutes=1, microseconds=5)) == 60.000005
    assert json_safe(Range(empty=True)) == {
        "lower": None, "upper": None, "bounds": "", "empty": True
    }  # fmt: skip
    assert json_safe((uuid.UUID(int=1),)) == ["00000000-0000-0000-0000-000000000001"]


def test_session_is_read_only_with_timeouts_and_pg_catalog_first():
    with read_only_connection("default") as conn:
        _prepare_session(conn, timeout_ms=1234)
        settings_row = conn.execute(
            "SELECT current_setting('transaction_read_only'), "
            "current_setting('statement_timeout'), current_setting('search_path')"
        ).fetchone()
        conn.rollback()
    assert settings_row == ("on", "1234ms", '"pg_catalog", "public"')


def test_a_database_error_is_a_clear_query_failure():
    with pytest.raises(QueryFailed, match='column "nope" does not exist'):
        query_run(checked=sql_check("SELECT nope FROM demo_user"))


def test_other_targets_are_reached_by_their_configured_url(demo_data, settings):
    from django.db import connection

    from nlsql.ask import sql_run

    db = connection.settings_dict
    settings.DBARCHITECT_TARGETS = (
        f"replica=postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    result = sql_run(sql="SELECT count(*) FROM demo_user", target="replica")
    assert result.status == "ok" and result.rows == [[len(demo_data)]]
    assert result.target == "replica"
    settings.DBARCHITECT_TARGETS = "down=postgres://nobody@127.0.0.1:1/none"
    failed = sql_run(sql="SELECT 1", target="down")
    assert failed.status == "error" and "Cannot connect to target 'down'" in failed.error
