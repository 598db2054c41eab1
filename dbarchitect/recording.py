"""What an audit writes to the app database: its AuditRun, snapshots and recommendations.

Everything an audit found is written in one transaction with the AuditRun's final state
(`audit_record`), so a failed audit leaves its AuditRun marked failed and nothing else.
"""

import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from optimizations.decisions import recommendation_outcomes_check
from optimizations.impact import impact_fields
from optimizations.models import OptimizationLog
from optimizations.services import optimization_bulk_store
from pgaccess.qualstats import QualstatsStatus
from pgaccess.server_log import ServerLogQueries

from .collector import Collection, Counters, QueryStat
from .health import HealthFinding
from .index_owners import index_owner
from .locking import audit_lock_free
from .models import AuditRun, QuerySnapshot, Target
from .report import outcome_summary, report_build
from .review import recommendations_review
from .statistics_log import statistics_log_build

if TYPE_CHECKING:
    from .advisor import Advice
    from .statistics_advice import StatisticsAdvice
    from .verifier import Verification

logger = logging.getLogger(__name__)

# How each health finding's recommendation sentence starts.
FINDING_VERBS = {
    "drop_index": "Drop index",
    "invalid_index": "Drop invalid index",
    "fk_index": "Create index",
}
# The apps whose tables hold the architect's own bookkeeping (never audited as workload).
OWN_APPS = ("dbarchitect", "optimizations")


@dataclass(frozen=True)
class PreviousAudit:
    """The last successful audit of a target: the baseline for the next delta."""

    counters: dict[tuple[int, int], Counters] = field(default_factory=dict)
    stats_reset: datetime | None = None
    started_at: datetime | None = None
    audit_id: uuid.UUID | None = None


@dataclass
class AuditFindings:
    """Everything one audit found, in memory until `audit_record` writes it."""

    collection: Collection
    advice: "Advice | None" = None
    findings: list[HealthFinding] = field(default_factory=list)
    verifications: "dict[str, Verification]" = field(default_factory=dict)  # by fingerprint
    verify_note: str = ""
    qualstats: QualstatsStatus | None = None
    server_log: ServerLogQueries | None = None  # what never reached pg_stat_statements
    statistics: "StatisticsAdvice | None" = None  # proved statistics objects (verify on)


def audit_start(*, target: Target, verify: bool, audit_id: uuid.UUID | None = None) -> AuditRun:
    return AuditRun.objects.create(
        id=audit_id or uuid.uuid4(), target=target, verify=verify, status=AuditRun.Status.RUNNING
    )


def audit_previous(*, target: Target) -> PreviousAudit:
    audit = (
        AuditRun.objects.filter(target=target, status=AuditRun.Status.SUCCEEDED)
        .order_by("-started_at")
        .first()
    )
    if audit is None:
        return PreviousAudit()
    counters = {
        (s.queryid, s.userid): Counters(
            queryid=s.queryid,
            userid=s.userid,
            query=s.query,
            calls=s.cumulative_calls,
            total_time_ms=s.cumulative_total_time_ms,
            rows=s.cumulative_rows,
            shared_blks_hit=s.cumulative_shared_blks_hit,
            shared_blks_read=s.cumulative_shared_blks_read,
        )
        for s in audit.snapshots.all()
    }
    return PreviousAudit(
        counters=counters,
        stats_reset=audit.stats_reset,
        started_at=audit.started_at,
        audit_id=audit.id,
    )


def own_tables() -> list[str]:
    """The architect's own tables: its bookkeeping is not the workload it audits."""
    return [
        model._meta.db_table for app in OWN_APPS for model in apps.get_app_config(app).get_models()
    ]


def audit_fail(*, audit: AuditRun, error: str, phase_seconds: Mapping[str, float]) -> AuditRun:
    """Mark the audit failed with the reason; nothing else of it is written."""
    audit.status = AuditRun.Status.FAILED
    audit.error = error
    audit.finished_at = timezone.now()
    audit.phase_seconds = dict(phase_seconds)
    audit.report = {
        "audit_id": str(audit.id),
        "target": audit.target.name,
        "status": audit.status,
        "error": error,
        "phase_seconds": dict(phase_seconds),
    }
    audit.save(update_fields=["status", "error", "finished_at", "phase_seconds", "report"])
    return audit


def audit_mark_stale(*, older_than: timedelta | None = None) -> list[AuditRun]:
    """Mark failed the running audits whose process died: old enough and no lock held."""
    age = older_than or timedelta(minutes=settings.DBARCHITECT_STALE_AUDIT_MINUTES)
    stale = list(
        AuditRun.objects.filter(
            status=AuditRun.Status.RUNNING, started_at__lt=timezone.now() - age
        ).select_related("target")
    )
    marked = []
    for name in sorted({audit.target.name for audit in stale}):
        if not audit_lock_free(name):
            continue  # a live process is auditing this target; its audit is just slow
        for audit in (a for a in stale if a.target.name == name):
            marked.append(audit_mark_dead(audit=audit, why="its process stopped"))
    return marked


def audit_mark_dead(*, audit: AuditRun, why: str) -> AuditRun:
    audit.status = AuditRun.Status.FAILED
    audit.finished_at = timezone.now()
    audit.error = (
        f"stale: {why} before the audit finished (started {audit.started_at:%Y-%m-%d %H:%M} "
        "UTC, no audit lock held); nothing of it was recorded"
    )
    audit.save(update_fields=["status", "finished_at", "error"])
    logger.warning("audit %s of %s marked failed: %s", audit.id, audit.target.name, audit.error)
    return audit


def audit_mark_orphans(*, target: Target, keep: uuid.UUID) -> list[AuditRun]:
    """Called while holding the target's lock: any other running audit of it is dead."""
    orphans = AuditRun.objects.filter(target=target, status=AuditRun.Status.RUNNING).exclude(
        id=keep
    )
    return [audit_mark_dead(audit=audit, why="its process stopped") for audit in orphans]


def optimization_logs_build(*, audit: AuditRun, found: AuditFindings) -> list[OptimizationLog]:
    """One unsaved OptimizationLog per index recommendation, rewrite hint and health finding."""
    queries = {stat.queryid: stat for stat in found.collection.slow}
    window = collection_window(audit=audit, stats_reset=found.collection.stats_reset)
    logs = []
    advice = found.advice
    if advice is not None:
        for rec in advice.recommendations:
            verification = found.verifications.get(rec.fingerprint)
            if verification is not None and verification.dropped:
                continue  # it slows another query more than it saves (report: dropped)
            logs.append(_index_log(audit, rec, verification, queries, window))
        logs.extend(_rewrite_log(audit, hint) for hint in advice.rewrites)
    if found.statistics is not None:
        logs.extend(
            statistics_log_build(audit=audit, rec=rec, queries=queries, window=window)
            for rec in found.statistics.recommendations
        )
    recommendations = advice.recommendations if advice is not None else []
    logs.extend(
        _finding_log(audit, finding)
        for finding in findings_worth_proposing(found.findings)
        if not _fk_served(finding, recommendations)
    )
    return logs


def findings_worth_proposing(
    findings: list[HealthFinding], *, min_bytes: int | None = None
) -> list[HealthFinding]:
    """The findings worth a DBA's time: no drop of an index smaller than the threshold
    (DBARCHITECT_UNUSED_INDEX_MIN_BYTES; dropping it frees nothing that matters)."""
    floor = settings.DBARCHITECT_UNUSED_INDEX_MIN_BYTES if min_bytes is None else min_bytes
    return [f for f in findings if not _small_drop(f, floor)]


def small_drops_count(findings: list[HealthFinding], *, min_bytes: int | None = None) -> int:
    """How many drop findings `findings_worth_proposing` leaves out (the report says it)."""
    return len(findings) - len(findings_worth_proposing(findings, min_bytes=min_bytes))


def _small_drop(finding: HealthFinding, floor: int) -> bool:
    return finding.kind == OptimizationLog.Kind.DROP_INDEX and finding.size_bytes < floor


def collection_window(*, audit: AuditRun, stats_reset: datetime | None) -> float | None:
    """Seconds the collected calls span: since the previous successful audit of the target,
    else since pg_stat_statements was reset; None when neither is known."""
    previous = (
        AuditRun.objects.filter(target_id=audit.target_id, status=AuditRun.Status.SUCCEEDED)
        .exclude(pk=audit.pk)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    since = previous or stats_reset
    return None if since is None else max((audit.started_at - since).total_seconds(), 0.0)


def _fk_served(finding: HealthFinding, recommendations) -> bool:
    """A missing foreign-key index that a recommended index already starts with."""
    if finding.kind != OptimizationLog.Kind.FK_INDEX:
        return False
    wanted = set(finding.columns)
    for rec in recommendations:
        leading = [_bare_column(text) for text in rec.columns[: len(wanted)]]
        if (rec.schema, rec.table) == (finding.schema, finding.table) and set(leading) == wanted:
            return True
    return False


def _bare_column(key: str) -> str:
    # '"timestamp" DESC' -> 'timestamp'; expressions stay as they are and never match.
    first = key.split(" ", 1)[0]
    return first[1:-1].replace('""', '"') if first.startswith('"') else first


def audit_record(
    *, audit: AuditRun, found: AuditFindings, phase_seconds: Mapping[str, float]
) -> AuditRun:
    """Write snapshots, new recommendations and the audit's final state, all or nothing.

    A recommendation whose fingerprint the target already has (proposed, approved, applied
    or rejected) is reported but not recorded again.
    """
    started = time.perf_counter()
    logs = optimization_logs_build(audit=audit, found=found)
    # Memory, confidence, rationale: drop repeats, embed, score and explain the new ones
    # (before the transaction: the embedding model and an LLM take a while).
    review = recommendations_review(
        target_id=audit.target_id, logs=logs, stats=found.collection.stats
    )
    settled = review.repeat_fingerprints
    new_logs = review.new
    collection = found.collection
    with transaction.atomic():
        QuerySnapshot.objects.bulk_create(_snapshot(audit, stat) for stat in collection.stats)
        optimization_bulk_store(new_logs, embed=False)
        # Applied recommendations of this target: did the gain come? (needs the snapshots)
        outcomes = recommendation_outcomes_check(audit=audit)
        audit.status = AuditRun.Status.SUCCEEDED
        audit.finished_at = timezone.now()
        record_s = round(time.perf_counter() - started, 3)
        audit.phase_seconds = {**phase_seconds, "record": record_s}
        audit.report = report_build(audit=audit, found=found, logs=logs, settled=settled)
        audit.report["outcomes"] = [outcome_summary(log) for log in outcomes]
        audit.report["small_drops_left_out"] = {
            "count": small_drops_count(found.findings),
            "below_bytes": settings.DBARCHITECT_UNUSED_INDEX_MIN_BYTES,
        }
        audit.queries_collected = len(collection.stats)
        audit.queries_analyzed = len(collection.slow)
        audit.recommendations_count = len(new_logs)
        audit.skipped = audit.report["skipped"]
        audit.stats_reset = collection.stats_reset
        audit.error = ""
        audit.save()
    return audit


def _snapshot(audit: AuditRun, stat: QueryStat) -> QuerySnapshot:
    return QuerySnapshot(
        audit=audit,
        queryid=stat.queryid,
        userid=stat.userid,
        query=stat.query,
        calls=stat.calls,
        total_time_ms=stat.total_time_ms,
        mean_time_ms=stat.mean_time_ms,
        rows=stat.rows,
        shared_blks_hit=stat.shared_blks_hit,
        shared_blks_read=stat.shared_blks_read,
        cumulative_calls=stat.cumulative_calls,
        cumulative_total_time_ms=stat.cumulative_total_time_ms,
        cumulative_rows=stat.cumulative_rows,
        cumulative_shared_blks_hit=stat.cumulative_shared_blks_hit,
        cumulative_shared_blks_read=stat.cumulative_shared_blks_read,
        is_slow=stat.is_slow,
        tables=list(stat.tables),
        timeouts=stat.timeouts,
    )


def _index_log(
    audit, rec, verification, queries: Mapping[int, QueryStat], window: float | None
) -> OptimizationLog:
    served = [queries[qid] for qid in rec.queryids if qid in queries]
    main = max(served, key=lambda stat: stat.total_time_ms, default=None)
    ms_before = getattr(verification, "ms_before", None)
    ms_after = getattr(verification, "ms_after", None)
    measured = ms_before is not None and ms_after is not None and ms_before > 0
    gain = (ms_before - ms_after) / ms_before * 100 if measured else rec.cost_reduction * 100
    keys = ", ".join(rec.columns)
    using = "" if rec.method == "btree" else f" using {rec.method}"
    where = f" where {rec.where}" if rec.where else ""
    sentence = (
        f"Create index {rec.name} on {rec.schema}.{rec.table}{using} ({keys}){where}: "
        f"estimated cost {rec.cost_before:,.0f} -> {rec.cost_after:,.0f} "
        f"({rec.cost_reduction:.0%} less) for {_plural(len(rec.queryids), 'query', 'queries')}"
    )
    if rec.partitioned:
        sentence += (
            "; partitioned table: PostgreSQL cannot build this index CONCURRENTLY, so the "
            "build blocks writes (build it in a quiet hour, or per partition CONCURRENTLY "
            "and ALTER INDEX ... ATTACH PARTITION)"
        )
    if rec.assumed_text_search_config:
        sentence += (
            f"; assumes the text search configuration {rec.assumed_text_search_config} "
            "(the target's default: pg_stat_statements hides the one the query names), and "
            "serves the query only if it names the same"
        )
    if measured:
        speedup = ms_before / ms_after if ms_after > 0 else float("inf")
        sentence += f"; measured {ms_before:.2f} ms -> {ms_after:.2f} ms ({speedup:,.1f}x faster)"
    elif verification is not None and verification.error:
        sentence += f"; not measured: {verification.error}"
    details = {
        "index_name": rec.name,
        "method": rec.method,
        "where": rec.where,
        "needs_real_build": rec.needs_real_build,
        "partitioned": rec.partitioned,
        "assumed_text_search_config": rec.assumed_text_search_config,
        # Its size as a build lays it out (index_size_bytes is HypoPG's estimate).
        "built_size_bytes": rec.built_size_bytes,
        "per_query_cost": {str(qid): list(pair) for qid, pair in rec.per_query.items()},
        "per_query_ms": {
            str(qid): list(pair)
            for qid, pair in (getattr(verification, "per_query", {}) or {}).items()
        },
        "estimated_plans": {"before": rec.plan_before, "after": rec.plan_after},
        # The statements costed with values in place (pg_qualstats' where it saw them).
        "statements": {str(qid): text for qid, text in rec.statements.items()},
        "measured": measured,
        "build_ms": getattr(verification, "build_ms", None),
        # Queries the whole set made slower because of this index, kept all the same.
        "slowdowns": [
            dataclasses.asdict(slow) for slow in getattr(verification, "slowdowns", None) or []
        ],
        "verification_error": getattr(verification, "error", None),
        "queries": [s.served_detail() for s in served],
    }
    impact = impact_fields(details=details, window_seconds=window)
    return OptimizationLog(
        query_text=main.query if main else "",
        recommendation=sentence,
        **impact,
        performance_gain=round(gain, 2),
        kind=OptimizationLog.Kind.INDEX,
        ddl=rec.ddl,
        target=audit.target,
        audit=audit,
        fingerprint=rec.fingerprint[:255],
        queryids=list(rec.queryids),
        table_name=f"{rec.schema}.{rec.table}",
        columns=list(rec.columns),
        estimated_cost_before=rec.cost_before,
        estimated_cost_after=rec.cost_after,
        measured_ms_before=ms_before,
        measured_ms_after=ms_after,
        index_size_bytes=rec.size_bytes,
        plan_before=getattr(verification, "plan_before", None) or rec.plan_before,
        plan_after=getattr(verification, "plan_after", None) or rec.plan_after,
        details=details,
    )


def _rewrite_log(audit, hint) -> OptimizationLog:
    return OptimizationLog(
        query_text=hint.query,
        recommendation=hint.message,
        performance_gain=0.0,
        kind=OptimizationLog.Kind.REWRITE,
        target=audit.target,
        audit=audit,
        fingerprint=f"rewrite:{hint.kind}:{hint.queryid}"[:255],
        queryids=[hint.queryid],
        details={"rewrite_kind": hint.kind},
    )


def _finding_log(audit, finding: HealthFinding) -> OptimizationLog:
    """A health finding as a recommendation; a drop of an index an installed app's migrations
    own carries that app's migration change instead of a raw DROP (no DDL to apply)."""
    owner = None
    if finding.kind == OptimizationLog.Kind.DROP_INDEX and finding.index:
        owner = index_owner(table=finding.table, index=finding.index, schema=finding.schema)
    verb = FINDING_VERBS.get(finding.kind, finding.kind)
    reason = finding.reason if owner is None else f"{finding.reason}; {owner.sentence}"
    details = {"index": finding.index, "reason": finding.reason}
    if owner is not None:
        verb = "Remove index (by a migration)"
        details["django_owner"] = dataclasses.asdict(owner)
    return OptimizationLog(
        query_text=finding.ddl if owner is None else "",
        recommendation=f"{verb} {finding.index} on {finding.schema}.{finding.table}: {reason}",
        performance_gain=0.0,
        kind=finding.kind,
        ddl=finding.ddl if owner is None else "",
        target=audit.target,
        audit=audit,
        fingerprint=finding.fingerprint[:255],
        table_name=f"{finding.schema}.{finding.table}",
        columns=list(finding.columns),
        index_size_bytes=finding.size_bytes or None,
        details=details,
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
