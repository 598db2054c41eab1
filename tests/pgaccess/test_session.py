"""The one way to a target: marker, read-only, timeouts, application name, secret-free errors."""

import psycopg
import pytest
from psycopg import sql

from dbarchitect.services import audit_queue
from dbarchitect.targets import target_get
from nlsql.ask import InvalidInput, target_validate
from nlsql.runner import QueryFailed, read_only_connection
from nlsql.training import TrainingError, training_add_pair
from pgaccess.marker import MARKER, execute, marked, script
from pgaccess.scrub import secrets_scrub
from pgaccess.session import APPLICATION_NAME, TargetUnavailable, session_connect
from pgaccess.targets import UnknownTarget, database_conninfo, target_connection

pytestmark = pytest.mark.django_db

OWN_QUERY = "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()"


def test_the_marker_is_added_once_to_text_bytes_and_composed_sql():
    assert marked("SELECT 1") == f"{MARKER} SELECT 1"
    assert marked(f"{MARKER} SELECT 1") == f"{MARKER} SELECT 1"
    assert marked(b"SELECT 1") == MARKER.encode() + b" SELECT 1"
    composed = sql.SQL("SELECT {}").format(sql.Identifier("a"))
    assert marked(composed).as_string(None) == f'{MARKER} SELECT "a"'
    assert marked(marked(composed)).as_string(None) == f'{MARKER} SELECT "a"'
    two = script([sql.SQL("SET LOCAL work_mem = '8MB'"), sql.SQL("SELECT 1")])
    assert two.as_string(None) == f"{MARKER} SET LOCAL work_mem = '8MB'; {MARKER} SELECT 1"


def test_a_session_marks_every_statement_and_names_itself():
    with session_connect("default", purpose="test") as conn:
        assert conn.execute(OWN_QUERY).fetchone()[0] == f"{MARKER} {OWN_QUERY}"
        with conn.cursor() as cur:
            assert cur.execute(sql.SQL(OWN_QUERY)).fetchone()[0] == f"{MARKER} {OWN_QUERY}"
        assert conn.execute("SHOW application_name").fetchone()[0] == APPLICATION_NAME
    # pgaccess's own reads are marked on a connection someone else opened, too.
    with psycopg.connect(database_conninfo(), autocommit=True) as plain:
        assert plain.execute(OWN_QUERY).fetchone()[0] == OWN_QUERY
        assert execute(plain, OWN_QUERY).fetchone()[0] == f"{MARKER} {OWN_QUERY}"


def test_an_unmarked_session_runs_the_text_as_written():
    with session_connect("default", purpose="test", mark=False) as conn:
        assert conn.execute(OWN_QUERY).fetchone()[0] == OWN_QUERY


def test_timeouts_come_from_the_settings_or_the_caller(settings):
    settings.DBARCHITECT_STATEMENT_TIMEOUT_MS = 4321
    settings.DBARCHITECT_LOCK_TIMEOUT_MS = 321
    with session_connect("default", purpose="test") as conn:
        row = conn.execute("SELECT current_setting('statement_timeout'), "
                           "current_setting('lock_timeout')").fetchone()  # fmt: skip
        assert row == ("4321ms", "321ms")
    with (
        session_connect("default", purpose="test", statement_timeout_ms=50) as conn,
        pytest.raises(psycopg.errors.QueryCanceled),
    ):
        conn.execute("SELECT pg_sleep(1)")


def test_a_read_only_session_refuses_writes_even_in_autocommit():
    with (
        session_connect("default", purpose="test", read_only=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TEMP TABLE ro_probe (a int)")
    with read_only_connection("default") as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE ro_probe (a int)")
        conn.rollback()


def _secret_target(settings) -> str:
    """A target whose password is also the name of a database that does not exist: the
    server's refusal repeats it, the message must not."""
    params = psycopg.conninfo.conninfo_to_dict(database_conninfo())
    secret = "xyzzy-secret-pw"
    url = f"postgres://{params.get('user', 'postgres')}:{secret}@{params.get('host', '127.0.0.1')}"
    settings.DBARCHITECT_TARGETS = f"leaky={url}:{params.get('port', 5432)}/{secret}"
    return secret


def test_connection_errors_never_carry_the_password(settings):
    secret = _secret_target(settings)
    assert secret in target_connection("leaky").conninfo
    with pytest.raises(TargetUnavailable) as caught:
        session_connect("leaky", purpose="audit")
    assert secret not in str(caught.value) and '"***"' in caught.value.reason
    assert str(caught.value).startswith("target 'leaky' is unreachable for audit (")
    with pytest.raises(QueryFailed) as failed:
        read_only_connection("leaky")
    assert str(failed.value).startswith("Cannot connect to target 'leaky': ")
    assert secret not in str(failed.value)
    assert secrets_scrub(f"pw={secret}") == "pw=***"


def test_every_unknown_target_check_is_the_one_unknown_target(settings):
    settings.DBARCHITECT_TARGETS = ""
    expected = "Unknown target 'nope'; configured targets: default"
    for attempt in (
        lambda: target_connection("nope"),
        lambda: session_connect("nope", purpose="audit"),
        lambda: target_get(name="nope"),
        lambda: audit_queue(target="nope"),
    ):
        with pytest.raises(UnknownTarget) as caught:
            attempt()
        assert str(caught.value) == expected and caught.value.known == ["default"]
    # Ask-the-database says it in its own error types, in the same words.
    with pytest.raises(InvalidInput, match=f"^{expected}.$"):
        target_validate("nope")
    with pytest.raises(TrainingError, match=f"^{expected}.$"):
        training_add_pair(question="q", sql="SELECT 1", target="nope")
