"""optimizations.impact: workload time saved per week, measured where verified."""

import datetime
import importlib

import pytest
from django.apps import apps

from dbarchitect.models import AuditRun, Target
from optimizations.impact import DAY_SECONDS, WEEK_SECONDS, calls_per_week, impact_compute
from optimizations.models import ImpactBasis, OptimizationLog

DETAILS = {
    "queries": [
        {"queryid": 1, "calls": 700, "mean_ms": 50.0},
        {"queryid": 2, "calls": 70, "mean_ms": 10.0},
    ],
    "per_query_cost": {"1": [1000.0, 100.0], "2": [500.0, 250.0]},
}


def test_calls_scale_to_a_week_from_the_collection_window():
    assert calls_per_week(700, WEEK_SECONDS) == 700
    assert calls_per_week(100, WEEK_SECONDS / 7) == pytest.approx(700)
    assert calls_per_week(100, None) == 100  # an unknown window counts as one week
    # A burst of ten minutes is scaled as a day, not extrapolated to a week of bursts.
    assert calls_per_week(100, 600) == calls_per_week(100, DAY_SECONDS) == pytest.approx(700)


def test_an_unmeasured_recommendation_is_estimated_from_the_cost_reduction():
    impact = impact_compute(details=DETAILS, window_seconds=WEEK_SECONDS)
    # 700 x 50 ms x 90% + 70 x 10 ms x 50%
    assert impact.ms_per_week == pytest.approx(31_500 + 350)
    assert impact.basis == ImpactBasis.ESTIMATED
    assert impact.calls_per_week == 770


def test_measured_queries_count_what_was_measured_and_all_measured_reads_measured():
    measured = {**DETAILS, "per_query_ms": {"1": [48.0, 0.5], "2": [9.0, 9.5]}}
    impact = impact_compute(details=measured, window_seconds=WEEK_SECONDS)
    assert impact.ms_per_week == pytest.approx(700 * 47.5)  # a slower query saves nothing
    assert impact.basis == ImpactBasis.MEASURED
    partly = {**DETAILS, "per_query_ms": {"1": [48.0, 0.5]}}
    impact = impact_compute(details=partly, window_seconds=WEEK_SECONDS)
    assert impact.ms_per_week == pytest.approx(700 * 47.5 + 350)
    assert impact.basis == ImpactBasis.ESTIMATED  # one part is an estimate


def test_a_recommendation_serving_no_query_saves_no_query_time():
    impact = impact_compute(details={"index": "x_idx"}, window_seconds=None)
    assert (impact.ms_per_week, impact.basis) == (0.0, ImpactBasis.NONE)


@pytest.mark.django_db
def test_the_backfill_computes_older_rows_over_their_audits_window():
    backfill = importlib.import_module("optimizations.migrations.0005_backfill_impact").backfill
    target, _ = Target.objects.get_or_create(name="default")
    earlier = AuditRun.objects.create(target=target, status=AuditRun.Status.SUCCEEDED)
    audit = AuditRun.objects.create(target=target, status=AuditRun.Status.SUCCEEDED)
    AuditRun.objects.filter(pk=audit.pk).update(
        started_at=earlier.started_at + datetime.timedelta(days=1)
    )
    one_query = {"queries": [{"queryid": 1, "calls": 100, "mean_ms": 50.0}]}
    measured = OptimizationLog.objects.create(
        audit=audit, target=target, kind="index", recommendation="measured",
        measured_ms_before=48.0, measured_ms_after=0.5, details=one_query,
    )  # fmt: skip
    estimated = OptimizationLog.objects.create(
        audit=audit, target=target, kind="index", recommendation="estimated",
        details={**one_query, "per_query_cost": {"1": [100.0, 10.0]}},
    )  # fmt: skip
    drop = OptimizationLog.objects.create(
        audit=audit, target=target, kind="drop_index", recommendation="drop", details={}
    )

    backfill(apps, None)

    for log in (measured, estimated, drop):
        log.refresh_from_db()
    assert measured.impact == pytest.approx(700 * 47.5)  # 100 calls a day, 47.5 ms saved
    assert measured.impact_basis == ImpactBasis.MEASURED
    assert estimated.impact == pytest.approx(700 * 45.0)
    assert estimated.impact_basis == ImpactBasis.ESTIMATED
    assert (drop.impact, drop.impact_basis) == (0.0, ImpactBasis.NONE)
