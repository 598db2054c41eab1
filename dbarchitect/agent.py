"""One audit of one target database, read top to bottom.

lock -> collect -> analyze + advise -> health -> verify -> record. Each phase returns data
for the next; nothing is written until `audit_record`, in one transaction, so a failure at
any point leaves the AuditRun marked failed with the reason and no half set of results.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from pgaccess.pgss import PgssUnavailable
from pgaccess.qualstats import qualstats_read, qualstats_status
from pgaccess.scrub import secrets_scrub
from pgaccess.server_log import server_log_queries
from pgaccess.session import TargetUnavailable, target_session
from pgaccess.targets import UnknownTarget

from . import advisor, verifier
from .advisor.sizes import SizeEstimate
from .budget import IndexBudget, budget_parse
from .collector import Thresholds, collect_queries
from .health import health_check
from .locking import AuditAlreadyRunning, audit_lock
from .models import AuditRun, Target
from .proposals import audit_propose
from .recording import (
    AuditFindings,
    audit_fail,
    audit_mark_orphans,
    audit_mark_stale,
    audit_previous,
    audit_record,
    audit_start,
    own_tables,
)
from .statistics_advice import statistics_advise
from .targets import target_get
from .timed_out import collection_with_timed_out, timed_out_stats
from .workload_values import quals_by_query

logger = logging.getLogger(__name__)

__all__ = ["AuditAlreadyRunning", "UnknownTarget", "run_audit"]

# Failures whose message says what to fix on the target or in the settings.
KNOWN_FAILURES = (
    TargetUnavailable,
    PgssUnavailable,
    advisor.AdvisorError,
    psycopg.OperationalError,
    SoftTimeLimitExceeded,
)


class VerifyMode(StrEnum):
    OFF = "off"  # DBARCHITECT_VERIFY=off, or the run asked for no verification
    DATABASE = "database"  # on the verification database DBARCHITECT_VERIFY names
    TARGET = "target"  # on the audited target, which allows it
    NOT_ALLOWED = "not_allowed"  # wanted, but the target does not allow index builds


@dataclass(frozen=True)
class VerifyPlan:
    mode: VerifyMode
    database: str | None  # the target the indexes are built on; None: no verification
    note: str  # the report's sentence


def run_audit(
    *,
    target: str,
    verify: bool | None = None,
    audit_id: uuid.UUID | None = None,
    budget: IndexBudget | None = None,
) -> AuditRun:
    """Audit `target` once; returns its AuditRun, succeeded or failed with the reason.

    `budget`: the storage the new indexes may take (default: DBARCHITECT_INDEX_BUDGET).

    Raises UnknownTarget for a target that is not configured and AuditAlreadyRunning when
    another audit of it holds the lock (no AuditRun is created then).
    """
    target_row = target_get(name=target)
    plan = verify_plan(target=target_row, verify=verify)
    audit_mark_stale()
    with audit_lock(target):
        audit = audit_start(target=target_row, verify=plan.database is not None, audit_id=audit_id)
        audit_mark_orphans(target=target_row, keep=audit.id)
        phases: dict[str, float] = {}
        try:
            budget = budget or budget_parse(settings.DBARCHITECT_INDEX_BUDGET)
            found = _audit_phases(target_row, plan, phases, budget)
            audit = audit_record(audit=audit, found=found, phase_seconds=phases)
        except Exception as exc:
            error = audit_error(exc)
            # A known cause is one line in the log; anything else keeps its traceback.
            known = isinstance(exc, KNOWN_FAILURES)
            logger.error("audit %s of %s failed: %s", audit.id, target, error, exc_info=not known)
            return audit_fail(audit=audit, error=error, phase_seconds=phases)
        # Propose: the confident recommendations become a migration on a branch and a pull
        # request, once committed; what happened goes to the report, never fails the audit.
        audit_propose(audit=audit)
        return audit


def _audit_phases(
    target: Target, plan: VerifyPlan, phases: dict[str, float], budget: IndexBudget
) -> AuditFindings:
    verify_db, verify_note = plan.database, plan.note
    with target_session(target.name, purpose="audit") as conn:
        # A standby or a read-only role cannot build indexes: say that, not "allow it".
        if plan.mode == VerifyMode.NOT_ALLOWED:
            blocked = verifier.verification_blocker(conn)
            verify_note = f"skipped: {blocked}" if blocked else verify_note
        # Collect: what ran since the previous audit, over the thresholds.
        with _phase(phases, "collect"):
            previous = audit_previous(target=target)
            collection = collect_queries(
                conn,
                previous=previous.counters,
                previous_stats_reset=previous.stats_reset,
                previous_started_at=previous.started_at,
                thresholds=Thresholds(
                    min_mean_ms=settings.DBARCHITECT_MIN_MEAN_MS,
                    min_calls=settings.DBARCHITECT_MIN_CALLS,
                    min_total_share=settings.DBARCHITECT_MIN_TOTAL_SHARE,
                    max_queries=settings.DBARCHITECT_MAX_QUERIES,
                ),
                own_tables=own_tables(),
            )
            # Beyond pg_stat_statements: whether pg_qualstats saw the predicates' constants,
            # and what the server's log has that never reached it (timed out, over-long).
            qualstats = qualstats_status(conn)
            quals = (
                quals_by_query(
                    qualstats_read(
                        conn, status=qualstats, queryids=[s.queryid for s in collection.slow]
                    )
                )
                if qualstats.ready
                else {}
            )
            log_file = settings.DBARCHITECT_SERVER_LOG.get(target.name)
            server_log = server_log_queries(
                conn,
                max_bytes=settings.DBARCHITECT_SERVER_LOG_MAX_BYTES,
                log_file=Path(log_file) if log_file else None,
            )
            # What timed out and so never reached pg_stat_statements is audited too.
            timed_out = timed_out_stats(
                server_log.queries,
                known=[stat.query for stat in collection.stats],
                timeout_ms=settings.DBARCHITECT_TIMED_OUT_MS,
                own_tables=own_tables(),
            )
            collection = collection_with_timed_out(collection, timed_out)
        # Analyze + advise: candidate indexes costed with HypoPG on generic plans.
        with _phase(phases, "advise"):
            advice = advisor.advise(
                conn,
                collection.slow,
                min_table_rows=settings.DBARCHITECT_MIN_TABLE_ROWS,
                min_cost_reduction=settings.DBARCHITECT_MIN_COST_REDUCTION,
                workload=collection.stats,
                quals=quals,
                budget=budget,
                size_estimate=SizeEstimate(settings.DBARCHITECT_INDEX_SIZE_ESTIMATE),
            )
        # Health: unused, duplicate and invalid indexes, foreign keys without one.
        with _phase(phases, "health"):
            findings = health_check(
                conn,
                min_unused_bytes=settings.DBARCHITECT_UNUSED_INDEX_MIN_BYTES,
                min_table_rows=settings.DBARCHITECT_MIN_TABLE_ROWS,
                skip_tables=own_tables(),
            )
    # Verify: build each index for real in a rolled-back transaction, measure before/after.
    # A hot standby or a read-only role cannot build any: each recommendation says so.
    verifications = {}
    if verify_db and advice.recommendations:
        with _phase(phases, "verify"), target_session(verify_db, purpose="verify") as vconn:
            blocked = verifier.verification_blocker(vconn)
            if blocked:
                results = verifier.not_built(advice.recommendations, blocked)
                verify_note = f"not possible {verify_note}: {blocked}"
            else:
                results = verifier.verify(
                    vconn,
                    advice.recommendations,
                    {stat.queryid: stat for stat in collection.slow},
                    lock_timeout_ms=settings.DBARCHITECT_LOCK_TIMEOUT_MS,
                    workload={stat.queryid: stat for stat in collection.stats},
                )
        verifications = {result.fingerprint: result for result in results}
    # Extended statistics: where a measured plan's row estimate is far off on correlated
    # columns, prove a statistics object (rolled back) and keep what measurably helps.
    statistics = None
    if verify_db:
        with _phase(phases, "statistics"), target_session(verify_db, purpose="verify") as sconn:
            if not verifier.verification_blocker(sconn):
                statistics = statistics_advise(sconn, collection.slow)
    return AuditFindings(
        collection=collection,
        advice=advice,
        findings=findings,
        verifications=verifications,
        verify_note=verify_note,
        qualstats=qualstats,
        server_log=server_log,
        statistics=statistics,
    )


def verify_plan(*, target: Target, verify: bool | None) -> VerifyPlan:
    """Whether to verify, on which target, and a sentence saying so for the report."""
    mode = settings.DBARCHITECT_VERIFY
    if verify is False or (verify is None and mode == "off"):
        return VerifyPlan(VerifyMode.OFF, None, "off: estimated costs only")
    if mode.startswith("database:"):
        name = mode.removeprefix("database:")
        return VerifyPlan(VerifyMode.DATABASE, name, f"on the verification database {name!r}")
    if target.allow_verify:
        note = "on the target itself (allowed for it in the admin)"
        return VerifyPlan(VerifyMode.TARGET, target.name, note)
    return VerifyPlan(
        VerifyMode.NOT_ALLOWED,
        None,
        "skipped: the target does not allow index builds; enable allow_verify in the admin "
        "or set DBARCHITECT_VERIFY=database:<a copy of it>",
    )


def audit_error(exc: BaseException) -> str:
    """The reason an audit failed, for the AuditRun and the report: no secrets."""
    if isinstance(exc, SoftTimeLimitExceeded):
        text = (
            "time limit: the audit ran past CELERY_TASK_SOFT_TIME_LIMIT="
            f"{settings.CELERY_TASK_SOFT_TIME_LIMIT}s and was stopped; nothing was recorded"
        )
    elif isinstance(exc, psycopg.errors.QueryCanceled):
        text = (
            "statement timeout: a statement on the target ran longer than "
            f"DBARCHITECT_STATEMENT_TIMEOUT_MS={settings.DBARCHITECT_STATEMENT_TIMEOUT_MS}: {exc}"
        )
    elif isinstance(exc, psycopg.errors.LockNotAvailable):
        text = (
            "lock timeout: a lock on the target was not granted within "
            f"DBARCHITECT_LOCK_TIMEOUT_MS={settings.DBARCHITECT_LOCK_TIMEOUT_MS}: {exc}"
        )
    elif isinstance(exc, psycopg.OperationalError):
        text = f"lost the connection to the target: {exc}"
    elif isinstance(exc, TargetUnavailable | PgssUnavailable | advisor.AdvisorError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return secrets_scrub(text.strip())


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - started, 3)
