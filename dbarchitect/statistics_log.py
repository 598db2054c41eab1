"""A proved statistics object as the recommendation the admin, the API and the pull
request read (OptimizationLog kind `statistics`), its estimates before and after as data."""

from __future__ import annotations

from collections.abc import Mapping

from optimizations.impact import impact_fields
from optimizations.models import OptimizationLog

from .collector import QueryStat
from .models import AuditRun
from .statistics_advice import StatisticsRecommendation


def statistics_log_build(
    *,
    audit: AuditRun,
    rec: StatisticsRecommendation,
    queries: Mapping[int, QueryStat],
    window: float | None,
) -> OptimizationLog:
    """The unsaved recommendation: measured on the proved query, like a verified index."""
    spec, proof = rec.spec, rec.proof
    served = [queries[qid] for qid in rec.queryids if qid in queries]
    proved = rec.queryids[0]
    kinds = ", ".join(kind.value for kind in spec.kinds)
    columns = ", ".join(spec.columns)
    gain = (proof.ms_before - proof.ms_after) / proof.ms_before * 100 if proof.ms_before else 0.0
    sentence = (
        f"Create statistics {spec.name} ({kinds}) on {spec.schema}.{spec.table} ({columns}): "
        f"the row estimate was {rec.factor_before:,.0f}x off "
        f"({proof.estimated_before:,.0f} rows estimated, {proof.actual_before:,.0f} actual), "
        f"with it {rec.factor_after:,.1f}x ({proof.estimated_after:,.0f} estimated); "
        f"measured {proof.ms_before:.2f} ms -> {proof.ms_after:.2f} ms"
    )
    details = {
        "statistics_name": spec.name,
        "kinds": [kind.value for kind in spec.kinds],
        "analyze": spec.analyze_sql(),
        "estimates": {
            "node": rec.miss.node_type,
            "before": {"estimated": proof.estimated_before, "actual": proof.actual_before},
            "after": {"estimated": proof.estimated_after, "actual": proof.actual_after},
            "factor_before": round(rec.factor_before, 2),
            "factor_after": round(rec.factor_after, 2),
        },
        "correlation": {
            "sampled_rows": rec.correlation.sampled_rows,
            "dependency": round(rec.correlation.dependency, 4),
            "combinations": rec.correlation.combinations,
        },
        "statement": rec.statement,
        "per_query_ms": {str(proved): [proof.ms_before, proof.ms_after]},
        "measured": True,
        "queries": [s.served_detail() for s in served],
    }
    impact = impact_fields(details=details, window_seconds=window)
    main = next((s for s in served if s.queryid == proved), None)
    return OptimizationLog(
        query_text=main.query if main else rec.statement,
        recommendation=sentence,
        **impact,
        performance_gain=round(gain, 2),
        kind=OptimizationLog.Kind.STATISTICS,
        ddl=spec.create_sql(),
        target=audit.target,
        audit=audit,
        fingerprint=rec.fingerprint[:255],
        queryids=list(rec.queryids),
        table_name=f"{spec.schema}.{spec.table}",
        columns=list(spec.columns),
        measured_ms_before=proof.ms_before,
        measured_ms_after=proof.ms_after,
        plan_before=proof.plan_before,
        plan_after=proof.plan_after,
        details=details,
    )
