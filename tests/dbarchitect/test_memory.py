import pytest

from dbarchitect.memory import (
    memory_similar,
    memory_split_repeats,
    past_outcomes,
)
from dbarchitect.models import Target
from optimizations.models import OptimizationLog
from optimizations.services import optimization_embed, optimization_store

pytestmark = pytest.mark.django_db

QUERY = "SELECT * FROM demo_behavior_log WHERE user_id = $1 ORDER BY timestamp DESC LIMIT $2"
DDL = "CREATE INDEX ON demo_behavior_log (user_id, timestamp)"


@pytest.fixture
def shop():
    return Target.objects.create(name="shop")


def _log(target, *, query=QUERY, ddl=DDL, fingerprint="demo_behavior_log(user_id,timestamp)"):
    return OptimizationLog(
        target=target, query_text=query, recommendation=ddl, ddl=ddl, fingerprint=fingerprint
    )


def _store(target, status, *, query=QUERY, ddl=DDL, fingerprint="x", outcome=""):
    return optimization_store(
        query=query,
        recommendation=ddl,
        performance_gain=50.0,
        target=target,
        status=status,
        ddl=ddl,
        fingerprint=fingerprint,
        outcome=outcome,
    )


@pytest.mark.parametrize("status", ["proposed", "approved", "applying", "applied", "rejected"])
def test_split_repeats_drops_a_fingerprint_already_decided_for_the_target(shop, status):
    _store(shop, status, fingerprint="demo_behavior_log(user_id,timestamp)")
    split = memory_split_repeats(target_id=shop.id, logs=[_log(shop)])
    assert split.new == []
    assert [log.fingerprint for log in split.repeats] == ["demo_behavior_log(user_id,timestamp)"]


def test_split_repeats_keeps_superseded_other_targets_and_dedupes_the_batch(shop):
    other = Target.objects.create(name="other")
    _store(shop, "superseded", fingerprint="demo_behavior_log(user_id,timestamp)")
    _store(other, "rejected", fingerprint="demo_behavior_log(user_id,timestamp)")
    split = memory_split_repeats(target_id=shop.id, logs=[_log(shop), _log(shop)])
    assert len(split.new) == 1
    assert len(split.repeats) == 1


def test_split_repeats_rejects_a_log_without_fingerprint(shop):
    with pytest.raises(ValueError, match="no fingerprint"):
        memory_split_repeats(target_id=shop.id, logs=[_log(shop, fingerprint="")])


def test_similar_finds_the_lookalike_and_not_the_unrelated(shop):
    lookalike = _store(
        shop,
        "rejected",
        query="SELECT id, event_type FROM demo_behavior_log WHERE user_id = $1 AND timestamp > $2",
    )
    _store(
        shop,
        "applied",
        query="SELECT name FROM products WHERE price BETWEEN $1 AND $2",
        ddl="CREATE INDEX ON products (price)",
        outcome="gain",
    )
    log = _log(shop)
    optimization_embed([log])
    assert len(log.embedding) == 384
    similar = memory_similar(log=log)
    assert [item.optimization.pk for item in similar] == [lookalike.pk]
    assert similar[0].similarity > 0.75
    everything = memory_similar(log=log, min_similarity=-1.0)
    assert len(everything) == 2
    assert everything[0].similarity > everything[1].similarity


def test_past_outcomes_signal_from_decisions(shop):
    rows = [
        _store(shop, "rejected"),
        _store(shop, "applied", outcome="gain"),
        _store(shop, "applied", outcome="regression"),
        _store(shop, "applied", outcome="no_gain"),
        _store(shop, "proposed"),
    ]
    similar = memory_similar(log=_log(shop), limit=10, min_similarity=-1.0)
    assert {item.optimization.pk for item in similar} == {row.pk for row in rows}
    signals = sorted(p.signal for p in past_outcomes(similar))
    assert signals == [-1.0, -1.0, 0.0, 1.0]  # the undecided proposal does not count


# --- In the audit pipeline (B's workload in tests/dbarchitect/conftest.py) ---


def _index_of(audit):
    return audit.optimizations.get(kind="index", table_name="public.pl_behavior_log")


@pytest.mark.django_db(transaction=True)
def test_auditing_twice_records_no_duplicates_and_scores_each(default_target, workload_conn):
    from dbarchitect.agent import run_audit

    from .conftest import pgss_reset_own_database, recent_logs

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)
    first = run_audit(target="default", verify=False)
    recent_logs(workload_conn, 20)
    second = run_audit(target="default", verify=False)

    assert first.status == second.status == "succeeded", second.error
    index = _index_of(first)
    assert second.optimizations.count() == 0
    assert OptimizationLog.objects.filter(fingerprint=index.fingerprint).count() == 1
    breakdown = index.confidence_breakdown
    assert breakdown["total"] == index.confidence
    assert breakdown["components"]["measured_speedup"]["score"] == 0.0  # not verified
    assert breakdown["components"]["cost_reduction"]["score"] > 0.5
    assert 0.0 < index.confidence < 0.8
    assert "Not measured" in index.explanation
    assert index.details["rationale_source"] == "facts"
    reported = [r for r in first.report["recommendations"] if r["kind"] == "index"]
    assert reported[0]["confidence"] == index.confidence
    assert reported[0]["rationale"] == index.explanation


@pytest.mark.django_db(transaction=True)
def test_a_rejected_recommendation_is_not_recorded_again(default_target, workload_conn, staff_user):
    from dbarchitect.agent import run_audit
    from optimizations.decisions import recommendation_reject

    from .conftest import pgss_reset_own_database, recent_logs

    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)
    first = run_audit(target="default", verify=False)
    index = _index_of(first)
    recommendation_reject(recommendation=index, user=staff_user, reason="we shard soon")
    recent_logs(workload_conn, 20)
    second = run_audit(target="default", verify=False)
    assert second.status == "succeeded", second.error
    assert not second.optimizations.filter(fingerprint=index.fingerprint).exists()
    again = [r for r in second.report["recommendations"] if r["fingerprint"] == index.fingerprint]
    assert again and again[0]["already_recorded"] and again[0]["confidence"] is None


@pytest.mark.django_db(transaction=True)
def test_a_similar_past_optimization_appears_in_the_rationale(default_target, workload_conn):
    from dbarchitect.agent import run_audit

    from .conftest import pgss_reset_own_database, recent_logs

    elsewhere = Target.objects.create(name="shop")
    past = _store(
        elsewhere,
        "applied",
        query="SELECT id, event_type FROM pl_behavior_log WHERE user_id = $1 "
        "ORDER BY timestamp DESC LIMIT $2",
        ddl="CREATE INDEX ON public.pl_behavior_log (user_id, timestamp DESC)",
        fingerprint="elsewhere",
        outcome="gain",
    )
    pgss_reset_own_database(workload_conn)
    recent_logs(workload_conn, 20)
    audit = run_audit(target="default", verify=False)
    assert audit.status == "succeeded", audit.error
    index = _index_of(audit)
    assert "Similar past optimizations:" in index.explanation
    assert "CREATE INDEX ON public.pl_behavior_log (user_id, timestamp DESC) on shop" in (
        index.explanation
    )
    assert index.details["similar"][0]["id"] == str(past.pk)
    # The applied-with-a-gain look-alike raises the past-outcomes score to the top.
    assert index.confidence_breakdown["components"]["past_outcomes"]["score"] == 1.0
