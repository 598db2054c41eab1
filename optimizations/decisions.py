"""What staff decide about a recommendation: approve, reject, apply; and whether it paid off.

Apply runs `CREATE INDEX CONCURRENTLY` on the recommendation's target, in autocommit, with a
lock timeout: writes to the table go on while it builds. A build that fails leaves an INVALID
index behind (duplicate values for a unique index, a lock timeout, a cancel); it is dropped
and reported. The next audit compares the served queries' mean time before and after the
apply (from pg_stat_statements counters) and sets the outcome: gain, no_gain or regression.
"""

import logging
import time
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from psycopg import sql

from dbarchitect.collector import CollectError, pgss_schema
from dbarchitect.connection import TargetUnavailable, secrets_scrub, target_connect
from dbarchitect.migration_writer import IndexSpec, MigrationWriteError, index_resolve
from dbarchitect.models import AuditRun, QuerySnapshot

from .models import OptimizationLog

logger = logging.getLogger(__name__)

Status = OptimizationLog.Status
APPLICABLE_KINDS = (OptimizationLog.Kind.INDEX, OptimizationLog.Kind.FK_INDEX)


class DecisionError(Exception):
    """This decision is not allowed for this recommendation; str() says why."""


@dataclass(frozen=True)
class ApplyResult:
    ok: bool
    message: str
    index_name: str | None


def _decide(log: OptimizationLog, *, allowed: tuple, to: str, user, action: str) -> None:
    if log.status not in allowed:
        names = " or ".join(str(s) for s in allowed)
        raise DecisionError(f"Cannot {action} a recommendation that is {log.status}; only {names}")
    log.status = to
    log.decided_by = user
    log.decided_at = timezone.now()


def recommendation_approve(*, recommendation: OptimizationLog, user) -> OptimizationLog:
    with transaction.atomic():
        log = OptimizationLog.objects.select_for_update().get(pk=recommendation.pk)
        _decide(log, allowed=(Status.PROPOSED,), to=Status.APPROVED, user=user, action="approve")
        log.save(update_fields=["status", "decided_by", "decided_at"])
    return log


def recommendation_reject(
    *, recommendation: OptimizationLog, user, reason: str = ""
) -> OptimizationLog:
    """Rejected recommendations are never proposed again for the same target."""
    with transaction.atomic():
        log = OptimizationLog.objects.select_for_update().get(pk=recommendation.pk)
        _decide(
            log,
            allowed=(Status.PROPOSED, Status.APPROVED),
            to=Status.REJECTED,
            user=user,
            action="reject",
        )
        log.details = {**(log.details or {}), "reject_reason": reason.strip()[:2000]}
        log.save(update_fields=["status", "decided_by", "decided_at", "details"])
    return log


def _qualified(spec: IndexSpec) -> sql.Composable:
    parts = (spec.schema, spec.name) if spec.schema else (spec.name,)
    return sql.Identifier(*parts)


def _index_state(conn: psycopg.Connection, spec: IndexSpec) -> bool | None:
    """True valid, False invalid (a failed build), None no such index."""
    name = _qualified(spec).as_string(conn)
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index AS i WHERE i.indexrelid = to_regclass(%s)", [name]
    ).fetchone()
    return None if row is None else bool(row[0])


def _drop_invalid(conn: psycopg.Connection, spec: IndexSpec) -> str:
    try:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(_qualified(spec)))
    except psycopg.Error as exc:
        return f"; dropping the invalid index {spec.name} failed too, drop it by hand: {exc}"
    return f"; the invalid index {spec.name} it left was dropped"


def _served_counters(conn: psycopg.Connection, queryids: list[int]) -> dict[str, list[float]]:
    """Cumulative (calls, total ms) of the served queries now: the apply's baseline."""
    if not queryids:
        return {}
    try:
        view = sql.Identifier(pgss_schema(conn), "pg_stat_statements")
    except CollectError:
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT s.queryid, sum(s.calls) AS calls, "
            "sum(s.total_exec_time + s.total_plan_time) AS total_ms "
            "FROM {} AS s WHERE s.dbid = (SELECT d.oid FROM pg_database AS d "
            "WHERE d.datname = current_database()) AND s.queryid = ANY(%s) GROUP BY s.queryid"
        ).format(view),
        [list(queryids)],
    ).fetchall()
    return {str(queryid): [float(calls), float(total)] for queryid, calls, total in rows}


def _mean_before(log: OptimizationLog) -> float | None:
    """Calls-weighted mean ms of the served queries in the last audit before the apply."""
    audit = (
        AuditRun.objects.filter(
            target_id=log.target_id,
            status=AuditRun.Status.SUCCEEDED,
            snapshots__queryid__in=log.queryids,
        )
        .order_by("-started_at")
        .first()
    )
    if audit is None:
        return None
    return _weighted_mean(audit.snapshots.filter(queryid__in=log.queryids))


def _weighted_mean(snapshots) -> float | None:
    calls = total = 0.0
    for snap in snapshots:
        calls += snap.calls
        total += snap.total_time_ms
    return total / calls if calls > 0 else None


def recommendation_apply(*, recommendation: OptimizationLog, applied_by) -> ApplyResult:
    """Build the recommended index concurrently on its target (superuser only)."""
    if not getattr(applied_by, "is_superuser", False):
        raise DecisionError("Only a superuser can apply an index")
    log = OptimizationLog.objects.select_related("target").get(pk=recommendation.pk)
    if log.kind not in APPLICABLE_KINDS:
        raise DecisionError(
            f"A {log.kind} recommendation is not an index to build; nothing to apply"
        )
    if log.status not in (Status.PROPOSED, Status.APPROVED):
        raise DecisionError(f"Cannot apply a recommendation that is {log.status}")
    if log.target is None or not log.ddl:
        raise DecisionError("This recommendation has no target database or no DDL to apply")
    try:
        spec, _, _ = index_resolve(log.ddl)
    except MigrationWriteError as exc:
        raise DecisionError(str(exc)) from None
    try:
        conn = target_connect(
            log.target.name,
            purpose="apply",
            statement_timeout_ms=settings.DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS,
        )
    except TargetUnavailable as exc:
        return ApplyResult(ok=False, message=str(exc), index_name=spec.name)
    with conn:
        state = _index_state(conn, spec)
        note = ""
        if state is False:
            dropped = _drop_invalid(conn, spec)
            if "failed" in dropped:
                message = f"Index {spec.name} exists but is INVALID{dropped}"
                return ApplyResult(ok=False, message=message, index_name=spec.name)
            note = f"Dropped the INVALID index {spec.name} a failed build had left. "
        if state is True:
            message = f"Index {spec.name} already exists and is valid: marked applied."
            elapsed_ms = 0.0
        else:
            started = time.perf_counter()
            try:
                conn.execute(spec.create_sql(if_not_exists=False))
            except psycopg.Error as exc:
                error = secrets_scrub(str(exc).strip())
                dropped = _drop_invalid(conn, spec) if _index_state(conn, spec) is False else ""
                message = f"{note}CREATE INDEX CONCURRENTLY {spec.name} failed: {error}{dropped}"
                logger.warning("apply of %s failed: %s", log.pk, message)
                log.details = {**(log.details or {}), "apply_error": message}
                log.save(update_fields=["details"])
                return ApplyResult(ok=False, message=message, index_name=spec.name)
            elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
            message = f"{note}Index {spec.name} built concurrently in {elapsed_ms:,.0f} ms."
        baseline = _served_counters(conn, list(log.queryids))
    log.status = Status.APPLIED
    log.applied_at = timezone.now()
    log.decided_by = log.decided_by or applied_by
    log.decided_at = log.decided_at or log.applied_at
    log.details = {
        **(log.details or {}),
        "applied_by": applied_by.get_username(),
        "apply_ms": elapsed_ms,
        "applied_index": spec.name,
        "apply_counters": baseline,
        "mean_ms_before_apply": _mean_before(log),
    }
    log.details.pop("apply_error", None)
    log.save(update_fields=["status", "applied_at", "decided_by", "decided_at", "details"])
    return ApplyResult(ok=True, message=message, index_name=spec.name)


def _mean_after(log: OptimizationLog, snapshots: list[QuerySnapshot]) -> float | None:
    """Mean ms of the served queries since the apply, from cumulative counters when possible."""
    baseline = (log.details or {}).get("apply_counters") or {}
    calls = total = 0.0
    for snap in snapshots:
        before = baseline.get(str(snap.queryid))
        if before and snap.cumulative_calls >= before[0]:
            calls += snap.cumulative_calls - before[0]
            total += snap.cumulative_total_time_ms - before[1]
        else:  # no baseline, or the stats were reset since: the audit's own delta
            calls += snap.calls
            total += snap.total_time_ms
    return total / calls if calls > 0 else None


def outcome_judge(*, before_ms: float, after_ms: float) -> str:
    """gain, no_gain or regression, with the thresholds from settings."""
    if after_ms <= before_ms * (1 - settings.DBARCHITECT_OUTCOME_MIN_GAIN):
        return "gain"
    if after_ms >= before_ms * (1 + settings.DBARCHITECT_OUTCOME_REGRESSION):
        return "regression"
    return "no_gain"


def recommendation_outcomes_check(*, audit: AuditRun) -> list[OptimizationLog]:
    """After an audit is recorded: judge the applied recommendations of its target."""
    pending = OptimizationLog.objects.filter(
        target_id=audit.target_id,
        status=Status.APPLIED,
        outcome="",
        applied_at__lt=audit.started_at,
    )
    judged = []
    for log in pending:
        snapshots = [s for s in audit.snapshots.all() if s.queryid in set(log.queryids)]
        before = (log.details or {}).get("mean_ms_before_apply") or log.measured_ms_before
        after = _mean_after(log, snapshots)
        if before is None or after is None:
            continue  # the queries did not run since the apply, or nothing to compare with
        log.mean_ms_after_apply = round(after, 4)
        log.outcome = outcome_judge(before_ms=before, after_ms=after)
        log.details = {
            **(log.details or {}),
            "outcome_check": {"audit_id": str(audit.id), "before_ms": before, "after_ms": after},
        }
        judged.append(log)
    OptimizationLog.objects.bulk_update(judged, ["mean_ms_after_apply", "outcome", "details"])
    return judged
