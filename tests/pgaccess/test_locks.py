"""Advisory locks: what one path takes, the other sees (the key layout is written once)."""

from types import SimpleNamespace

import pytest

from dbarchitect.locking import audit_lock
from optimizations.applying import index_build_progress
from pgaccess.locks import lock_holders, lock_release, lock_try
from pgaccess.session import session_connect

pytestmark = pytest.mark.django_db


def _holders(conn, name: str) -> list[int]:
    return [row[0] for row in conn.execute(lock_holders(name))]


def test_a_lock_taken_is_seen_by_the_holders_query_until_it_is_released():
    with (
        session_connect("default", purpose="test") as holder,
        session_connect("default", purpose="test") as watcher,
    ):
        assert lock_try(holder, "lk-target")
        assert _holders(watcher, "lk-target") == [holder.info.backend_pid]
        assert _holders(watcher, "lk-other") == []
        assert not lock_try(watcher, "lk-target")  # a second session is refused
        lock_release(holder, "lk-target")
        assert _holders(watcher, "lk-target") == []
        assert lock_try(watcher, "lk-target")
        lock_release(watcher, "lk-target")


def test_the_audit_lock_is_found_by_the_same_holders_query():
    with session_connect("default", purpose="test") as watcher:
        with audit_lock("lk-audited"):
            (pid,) = _holders(watcher, "lk-audited")
            assert pid != watcher.info.backend_pid
        assert _holders(watcher, "lk-audited") == []


def test_an_apply_lock_is_what_the_progress_query_reads():
    spec = SimpleNamespace(schema="public", name="lk_orders_idx")
    with (
        session_connect("default", purpose="apply") as builder,
        session_connect("default", purpose="apply progress") as watcher,
    ):
        assert index_build_progress(watcher, spec) is None
        assert lock_try(builder, "apply:public.lk_orders_idx")
        row = index_build_progress(watcher, spec)
        assert row["build_pid"] == builder.info.backend_pid and row["phase"] is None
