"""Backfill the impact of recommendations recorded before it existed, where computable.

An index recommendation stores its served queries (calls, mean time) and the planner's cost
per query; the collection window is its audit's start minus the target's previous
successful audit's. A measurement is used when it is of the only query served (older rows
did not store which query a measurement was of).
"""

from django.db import migrations

from optimizations.impact import impact_compute


def backfill(apps, schema_editor):
    OptimizationLog = apps.get_model("optimizations", "OptimizationLog")
    AuditRun = apps.get_model("dbarchitect", "AuditRun")
    logs = OptimizationLog.objects.filter(kind__in=["index", "fk_index"]).select_related("audit")
    changed = []
    for log in logs.defer("embedding").iterator(chunk_size=500):
        details = dict(log.details or {})
        queries = details.get("queries") or []
        if not queries:
            continue
        measured = log.measured_ms_before is not None and log.measured_ms_after is not None
        if measured and len(queries) == 1 and "per_query_ms" not in details:
            key = str(queries[0].get("queryid"))
            details["per_query_ms"] = {key: [log.measured_ms_before, log.measured_ms_after]}
        window = None
        if log.audit is not None:
            previous = (
                AuditRun.objects.filter(
                    target_id=log.audit.target_id,
                    status="succeeded",
                    started_at__lt=log.audit.started_at,
                )
                .order_by("-started_at")
                .values_list("started_at", flat=True)
                .first()
            )
            if previous is not None:
                window = (log.audit.started_at - previous).total_seconds()
        impact = impact_compute(details=details, window_seconds=window)
        log.impact, log.impact_basis = impact.ms_per_week, impact.basis
        changed.append(log)
    OptimizationLog.objects.bulk_update(changed, ["impact", "impact_basis"], batch_size=500)


class Migration(migrations.Migration):
    dependencies = [("optimizations", "0004_optimizationlog_impact")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
