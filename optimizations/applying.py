"""Applying a recommended index: asked for in a request, built by a Celery worker.

`CREATE INDEX CONCURRENTLY` on a production table takes minutes, longer than a web request
may live (a killed request cancels the build and leaves an INVALID index). So
`recommendation_apply_start` only checks the decision, marks the recommendation APPLYING
under a row lock (a second apply is refused) and queues `optimizations.apply_index`; the
worker's `recommendation_apply_run` builds the index on the target, in autocommit with a lock
timeout, and records APPLIED with the post-apply baseline, or the error and the status the
recommendation had before.

The build's connection holds an advisory lock on the target, keyed by the index name, for as
long as its backend lives. Through it the admin finds the build's row in
`pg_stat_progress_create_index`, a second build of the same index is refused, and an apply
that holds no lock but recorded no result is known to be lost (its worker died). A lost apply,
or one no worker started within DBARCHITECT_STALE_APPLY_MINUTES, may be applied again; the
INVALID index a dead build leaves is dropped before the new build.
"""

import datetime
import logging
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

import psycopg
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError
from psycopg import sql

from dbarchitect.models import AuditRun
from pgaccess.ddl import DdlError, IndexSpec, drop_index_sql
from pgaccess.locks import lock_holders, lock_try
from pgaccess.pgss import PgssUnavailable, pgss_read
from pgaccess.scrub import secrets_scrub
from pgaccess.session import TargetUnavailable, session_connect
from pgaccess.statistics_ddl import StatisticsDdlError, StatisticsSpec, statistics_spec_parse

from .decisions import DecisionError
from .model_indexes import index_resolve
from .models import OptimizationLog

logger = logging.getLogger(__name__)

Status = OptimizationLog.Status
INDEX_KINDS = (OptimizationLog.Kind.INDEX, OptimizationLog.Kind.FK_INDEX)
APPLICABLE_KINDS = (*INDEX_KINDS, OptimizationLog.Kind.STATISTICS)
# The statuses an apply starts from, and goes back to when it fails.
APPLY_FROM = (Status.PROPOSED, Status.APPROVED)
# How often a build's backend checks that its worker is still connected (PostgreSQL 14+): a
# build whose worker died is cancelled within this, instead of running on for hours.
CLIENT_CHECK_INTERVAL = "10s"


@dataclass(frozen=True)
class ApplyResult:
    ok: bool
    message: str
    index_name: str | None
    elapsed_ms: float | None = None


@dataclass(frozen=True)
class ApplyStarted:
    """What a request learns: the apply is queued, or (eager Celery, --wait) already done."""

    recommendation: OptimizationLog
    job_id: str
    ran_here: bool
    message: str


class ApplyState(StrEnum):
    """Where an APPLYING recommendation's build is."""

    QUEUED = "queued"  # waiting for a worker
    BUILDING = "building"  # a backend holds the build's lock
    LOST = "lost"  # its worker died, or none started it in time: it may be applied again
    UNKNOWN = "unknown"  # the target cannot be reached


@dataclass(frozen=True)
class ApplyProgress:
    """Where an APPLYING recommendation's build is."""

    state: ApplyState
    message: str
    phase: str = ""
    lockers_done: int | None = None
    lockers_total: int | None = None
    blocks_done: int | None = None
    blocks_total: int | None = None
    tuples_done: int | None = None
    tuples_total: int | None = None

    @property
    def blocks_percent(self) -> float | None:
        return _share(self.blocks_done, self.blocks_total)

    @property
    def tuples_percent(self) -> float | None:
        return _share(self.tuples_done, self.tuples_total)


def _share(done: int | None, total: int | None) -> float | None:
    return round(100.0 * done / total, 1) if done is not None and total else None


# --- the job record, in details["apply_job"] ---


def apply_job(log: OptimizationLog) -> dict:
    """The latest apply of this recommendation: ids, who, when, the result (or {})."""
    return dict((log.details or {}).get("apply_job") or {})


def _when(value: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(value) if value else None


def _shown(value: str | None) -> str:
    """An ISO timestamp of the job record as the messages show it (UTC, to the second)."""
    return f"{_when(value):%Y-%m-%d %H:%M:%S}" if value else "?"


def _is_current(log: OptimizationLog, job_id: str) -> bool:
    return log.status == Status.APPLYING and apply_job(log).get("job_id") == job_id


# --- checks shared by the request and the worker ---


def _index_spec(log: OptimizationLog) -> IndexSpec:
    """The index this recommendation builds, or DecisionError saying why there is none."""
    if log.kind not in INDEX_KINDS:
        raise DecisionError(
            f"A {log.kind} recommendation is not an index to build; nothing to apply"
        )
    if log.target is None or not log.ddl:
        raise DecisionError("This recommendation has no target database or no DDL to apply")
    try:
        spec, _, _ = index_resolve(log.ddl)
    except DdlError as exc:
        raise DecisionError(str(exc)) from None
    return spec


def _lock_key(spec: IndexSpec) -> str:
    return f"apply:{spec.schema or ''}.{spec.name}"


# --- progress and liveness, read on the target ---

PROGRESS_SQL = """
SELECT h.pid AS build_pid, p.phase, p.lockers_done, p.lockers_total,
       p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total
FROM ({holders}) AS h
LEFT JOIN pg_stat_progress_create_index AS p ON p.pid = h.pid
"""


def index_build_progress(conn: psycopg.Connection, spec: IndexSpec) -> dict | None:
    """The running apply of `spec` on this connection's database: its backend (the holder
    of the build's lock) and, once the build has started, pg_stat_progress_create_index's
    counters; None when none runs."""
    query = sql.SQL(PROGRESS_SQL).format(holders=lock_holders(_lock_key(spec)))
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute(query).fetchone()


def _progress(log: OptimizationLog, spec: IndexSpec) -> ApplyProgress:
    job = apply_job(log)
    if not job.get("started_at"):
        queued_at = _when(job.get("queued_at"))
        stale = settings.DBARCHITECT_STALE_APPLY_MINUTES
        if queued_at and timezone.now() - queued_at < datetime.timedelta(minutes=stale):
            return ApplyProgress(
                state=ApplyState.QUEUED,
                message=f"Queued at {_shown(job['queued_at'])} UTC by "
                f"{job.get('queued_by', '?')}, waiting for a Celery worker (none has started "
                f"it yet: is one running? `make worker`). After {stale} minutes without a "
                "worker it can be applied again.",
            )
        return ApplyProgress(
            state=ApplyState.LOST,
            message=f"no worker started it within {stale} minutes of queueing",
        )
    try:
        conn = session_connect(log.target.name, purpose="apply progress")
    except TargetUnavailable as exc:
        return ApplyProgress(
            state=ApplyState.UNKNOWN, message=f"Cannot tell how the build goes: {exc}"
        )
    with conn:
        row = index_build_progress(conn, spec)
    if row is None:
        return ApplyProgress(
            state=ApplyState.LOST,
            message=f"its worker stopped before recording a result (no build of {spec.name} "
            f"runs on target {log.target.name})",
        )
    phase = row["phase"] or "starting"
    return ApplyProgress(
        state=ApplyState.BUILDING,
        message=f"Building {spec.name} on target {log.target.name} (backend {row['build_pid']},"
        f" started {_shown(job['started_at'])} UTC): {phase}.",
        phase=phase,
        lockers_done=row["lockers_done"],
        lockers_total=row["lockers_total"],
        blocks_done=row["blocks_done"],
        blocks_total=row["blocks_total"],
        tuples_done=row["tuples_done"],
        tuples_total=row["tuples_total"],
    )


def recommendation_apply_progress(*, recommendation: OptimizationLog) -> ApplyProgress | None:
    """How an APPLYING recommendation's build goes; None in any other status."""
    if recommendation.status != Status.APPLYING:
        return None
    try:
        spec = _index_spec(recommendation)
    except DecisionError as exc:  # nothing can be building it
        return ApplyProgress(state=ApplyState.LOST, message=str(exc))
    return _progress(recommendation, spec)


# --- the request: check, mark APPLYING, queue ---


def recommendation_apply_start(
    *, recommendation: OptimizationLog, applied_by, in_process: bool = False
) -> ApplyStarted:
    """Check the apply at once and queue its build for a worker (superuser only).

    Raises DecisionError when it is not allowed (with why), and kombu's OperationalError,
    leaving the recommendation as it was, when the task queue cannot be reached.
    `in_process` builds in this process instead (a management command that waits).
    """
    if not getattr(applied_by, "is_superuser", False):
        raise DecisionError("Only a superuser can apply an index")
    if recommendation.kind == OptimizationLog.Kind.STATISTICS:
        return _statistics_apply(recommendation=recommendation, applied_by=applied_by)
    job_id = str(uuid.uuid4())
    ran: list[bool] = []
    with transaction.atomic():
        log = (
            OptimizationLog.objects.select_for_update(of=("self",))
            .select_related("target")
            .get(pk=recommendation.pk)
        )
        spec = _index_spec(log)
        if log.status == Status.APPLYING:
            _clear_lost(log, spec)
        if log.status not in APPLY_FROM:
            raise DecisionError(f"Cannot apply a recommendation that is {log.status}")
        now = timezone.now()
        job = {
            "job_id": job_id,
            "index": spec.name,
            "from_status": log.status,
            "queued_at": now.isoformat(),
            "queued_by": applied_by.get_username(),
            "queued_by_id": applied_by.pk,
        }
        log.status = Status.APPLYING
        log.details = {**(log.details or {}), "apply_job": job}
        log.save(update_fields=["status", "details"])
        run = _run_here if in_process else _publish
        transaction.on_commit(lambda: ran.append(run(log.pk, job_id)))
    log.refresh_from_db()
    if not ran or not ran[0]:
        return ApplyStarted(
            recommendation=log,
            job_id=job_id,
            ran_here=False,
            message=f"Apply of {spec.name} queued: a Celery worker builds it "
            "(CREATE INDEX CONCURRENTLY); the recommendation shows its progress.",
        )
    how = "in this process" if in_process else "at once (CELERY_TASK_ALWAYS_EAGER is on)"
    result = apply_job(log).get("result", f"the recommendation is {log.status}")
    return ApplyStarted(
        recommendation=log, job_id=job_id, ran_here=True, message=f"Applied {how}: {result}"
    )


def _publish(pk: uuid.UUID, job_id: str) -> bool:
    """Queue the build; True when Celery ran it eagerly, here and now."""
    from .tasks import recommendation_apply_task

    try:
        recommendation_apply_task.apply_async(
            kwargs={"recommendation_id": str(pk), "job_id": job_id}, task_id=job_id
        )
    except (OperationalError, RuntimeError) as exc:  # RuntimeError: the result store gave up
        _finish(
            pk,
            job_id,
            ApplyResult(
                ok=False,
                message="Could not queue the apply: the task queue is unavailable; nothing "
                "was built. Try again later.",
                index_name=None,
            ),
        )
        raise OperationalError(str(exc).strip()) from exc
    return bool(recommendation_apply_task.app.conf.task_always_eager)


def _run_here(pk: uuid.UUID, job_id: str) -> bool:
    try:
        recommendation_apply_run(recommendation_id=pk, job_id=job_id)
    except BaseException as exc:  # Ctrl-C too: the recommendation must not stay APPLYING
        recommendation_apply_fail(
            recommendation_id=pk, job_id=job_id, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    return True


def _clear_lost(log: OptimizationLog, spec: IndexSpec) -> None:
    """Put a lost apply's recommendation back as it was, or refuse while it may finish."""
    progress = _progress(log, spec)
    if progress.state != ApplyState.LOST:
        raise DecisionError(f"This recommendation is already being applied. {progress.message}")
    job = apply_job(log)
    message = (
        f"The apply queued at {_shown(job.get('queued_at'))} UTC by "
        f"{job.get('queued_by', '?')} was lost: {progress.message}."
    )
    logger.warning("apply of %s: %s", log.pk, message)
    _record(log, job, ApplyResult(ok=False, message=message, index_name=spec.name), None)


# --- the worker: build and record ---


def recommendation_apply_run(*, recommendation_id: uuid.UUID | str, job_id: str) -> ApplyResult:
    """Build the index of one queued apply and record how it went (what the task runs).

    A job that is no longer current (cleared as lost, or already finished) does nothing.
    """
    log = OptimizationLog.objects.select_related("target").filter(pk=recommendation_id).first()
    if log is None or not _is_current(log, job_id):
        return ApplyResult(ok=False, message="This apply is no longer current.", index_name=None)
    try:
        spec = _index_spec(log)
    except DecisionError as exc:
        return _finish(log.pk, job_id, ApplyResult(ok=False, message=str(exc), index_name=None))
    try:
        conn = _apply_session(log)
    except TargetUnavailable as exc:
        return _finish(log.pk, job_id, ApplyResult(False, str(exc), spec.name))
    with conn:
        # Held until the connection closes, after the result is recorded.
        if not lock_try(conn, _lock_key(spec)):
            if apply_job(log).get("started_at"):  # redelivered while the first run builds
                return ApplyResult(ok=False, message="Already building.", index_name=spec.name)
            message = (
                f"Another build of index {spec.name} runs on target {log.target.name}; "
                "apply again once it is done."
            )
            return _finish(log.pk, job_id, ApplyResult(False, message, spec.name))
        if not _mark_started(log.pk, job_id):
            return ApplyResult(
                ok=False, message="This apply is no longer current.", index_name=None
            )
        if conn.info.server_version >= 140000:
            conn.execute(
                sql.SQL("SET client_connection_check_interval = {}").format(
                    sql.Literal(CLIENT_CHECK_INTERVAL)
                )
            )
        result = _build(conn, spec)
        baseline = _served_counters(conn, list(log.queryids)) if result.ok else None
        if not transaction.get_connection().in_atomic_block:
            close_old_connections()  # after hours of building, the app's connection may be gone
        return _finish(log.pk, job_id, result, baseline)


def recommendation_apply_fail(*, recommendation_id: uuid.UUID | str, job_id: str, error: str):
    """Record that the apply's task itself failed (a bug, a time limit), if it is current."""
    _finish(
        recommendation_id,
        job_id,
        ApplyResult(
            ok=False, message=f"The apply task failed: {secrets_scrub(error)}", index_name=None
        ),
    )


def _mark_started(pk, job_id: str) -> bool:
    with transaction.atomic():
        log = OptimizationLog.objects.select_for_update().get(pk=pk)
        if not _is_current(log, job_id):
            return False
        job = {**apply_job(log), "started_at": timezone.now().isoformat()}
        log.details = {**log.details, "apply_job": job}
        log.save(update_fields=["details"])
    return True


def _finish(pk, job_id: str, result: ApplyResult, baseline: dict | None = None) -> ApplyResult:
    """Record the result on the recommendation, unless its job is no longer this one."""
    with transaction.atomic():
        log = OptimizationLog.objects.select_for_update().filter(pk=pk).first()
        if log is None or not _is_current(log, job_id):
            logger.warning("apply job %s of %s finished but is no longer current", job_id, pk)
            return result
        _record(log, apply_job(log), result, baseline)
    return result


def _record(log: OptimizationLog, job: dict, result: ApplyResult, baseline: dict | None) -> None:
    now = timezone.now()
    job = {**job, "finished_at": now.isoformat(), "ok": result.ok, "result": result.message}
    details = {**(log.details or {}), "apply_job": job}
    fields = ["status", "details"]
    if not result.ok:
        logger.warning("apply of %s failed: %s", log.pk, result.message)
        log.status = job.get("from_status", Status.PROPOSED)
        details["apply_error"] = result.message
    else:
        log.status = Status.APPLIED
        log.applied_at = now
        if log.decided_by_id is None:  # the user who queued it, unless deleted since
            log.decided_by = get_user_model().objects.filter(pk=job.get("queued_by_id")).first()
        log.decided_at = log.decided_at or now
        details.pop("apply_error", None)
        details.update(
            applied_by=job.get("queued_by"),
            apply_ms=result.elapsed_ms,
            applied_index=result.index_name,
            apply_counters=baseline or {},
            mean_ms_before_apply=_mean_before(log),
        )
        fields += ["applied_at", "decided_by", "decided_at"]
    log.details = details
    log.save(update_fields=fields)


def _index_state(conn: psycopg.Connection, spec: IndexSpec) -> bool | None:
    """True valid, False invalid (a failed build), None no such index."""
    name = spec.qualified.as_string(conn)
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index AS i WHERE i.indexrelid = to_regclass(%s)", [name]
    ).fetchone()
    return None if row is None else bool(row[0])


def _drop_invalid(conn: psycopg.Connection, spec: IndexSpec) -> psycopg.Error | None:
    """Drop the INVALID index a failed build left; the error when that fails too."""
    try:
        conn.execute(drop_index_sql(spec.schema, spec.name))
    except psycopg.Error as exc:
        return exc
    return None


def _drop_note(spec: IndexSpec, error: psycopg.Error | None) -> str:
    if error is not None:
        return f"; dropping the invalid index {spec.name} failed too, drop it by hand: {error}"
    return f"; the invalid index {spec.name} it left was dropped"


def _partitioned(conn: psycopg.Connection, spec: IndexSpec) -> bool:
    table = sql.Identifier(*((spec.schema, spec.table) if spec.schema else (spec.table,)))
    row = conn.execute(
        "SELECT c.relkind = 'p' FROM pg_class AS c WHERE c.oid = to_regclass(%s)",
        [table.as_string(conn)],
    ).fetchone()
    return bool(row and row[0])


def _build(conn: psycopg.Connection, spec: IndexSpec) -> ApplyResult:
    """CREATE INDEX CONCURRENTLY, after dropping an INVALID leftover of an earlier build.

    PostgreSQL cannot build an index on a partitioned table concurrently: there the build
    is a plain CREATE INDEX, which blocks writes while it runs (the recommendation says so)
    and, when it fails, rolls back whole: no INVALID index is left to clean up.
    """
    concurrent = not _partitioned(conn, spec)
    state = _index_state(conn, spec)
    if state is True:
        message = f"Index {spec.name} already exists and is valid: marked applied."
        return ApplyResult(True, message, spec.name, elapsed_ms=0.0)
    note = ""
    if state is False and not concurrent:
        message = (
            f"Index {spec.name} exists but is INVALID: a partition lacks its index. "
            "Attach the partitions' indexes or drop it, then apply again."
        )
        return ApplyResult(False, message, spec.name)
    if state is False:
        drop_error = _drop_invalid(conn, spec)
        if drop_error is not None:
            message = f"Index {spec.name} exists but is INVALID{_drop_note(spec, drop_error)}"
            return ApplyResult(False, message, spec.name)
        note = f"Dropped the INVALID index {spec.name} a failed build had left. "
    started = time.perf_counter()
    try:
        conn.execute(spec.create_sql(if_not_exists=False, concurrent=concurrent))
    except psycopg.Error as exc:
        error = secrets_scrub(str(exc).strip())
        left_invalid = concurrent and _index_state(conn, spec) is False
        dropped = _drop_note(spec, _drop_invalid(conn, spec)) if left_invalid else ""
        statement = "CREATE INDEX CONCURRENTLY" if concurrent else "CREATE INDEX"
        message = f"{note}{statement} {spec.name} failed: {error}{dropped}"
        return ApplyResult(False, message, spec.name)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    if concurrent:
        message = f"{note}Index {spec.name} built concurrently in {elapsed_ms:,.0f} ms."
    else:
        message = (
            f"Index {spec.name} built in {elapsed_ms:,.0f} ms on the partitioned table "
            f"{spec.table} (not concurrently: writes to it waited for the build)."
        )
    return ApplyResult(True, message, spec.name, elapsed_ms=elapsed_ms)


# --- a statistics object: created in the request ---


def _statistics_apply(*, recommendation: OptimizationLog, applied_by) -> ApplyStarted:
    """CREATE STATISTICS and an ANALYZE of only its columns (a sample of the table, no
    lock that blocks reads or writes): seconds at most, so no worker is queued for it."""
    job_id = str(uuid.uuid4())
    with transaction.atomic():
        log = (
            OptimizationLog.objects.select_for_update(of=("self",))
            .select_related("target")
            .get(pk=recommendation.pk)
        )
        if log.target is None:
            raise DecisionError("This recommendation has no target to create statistics on")
        try:
            spec = statistics_spec_parse(log.ddl)
        except StatisticsDdlError as exc:
            raise DecisionError(f"Cannot apply: {exc}") from None
        if log.status not in APPLY_FROM:
            raise DecisionError(f"Cannot apply a recommendation that is {log.status}")
        job = {
            "job_id": job_id,
            "statistics": spec.name,
            "from_status": log.status,
            "queued_at": timezone.now().isoformat(),
            "queued_by": applied_by.get_username(),
            "queued_by_id": applied_by.pk,
            "started_at": timezone.now().isoformat(),
        }
        result, baseline = _statistics_create(log, spec)
        _record(log, job, result, baseline)
    log.refresh_from_db()
    return ApplyStarted(
        recommendation=log, job_id=job_id, ran_here=True, message=f"Applied: {result.message}"
    )


def _apply_session(log: OptimizationLog) -> psycopg.Connection:
    """The target's session an apply builds on, with the apply's own statement timeout."""
    return session_connect(
        log.target.name,
        purpose="apply",
        statement_timeout_ms=settings.DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS,
    )


def _statistics_create(
    log: OptimizationLog, spec: StatisticsSpec
) -> tuple[ApplyResult, dict | None]:
    try:
        conn = _apply_session(log)
    except TargetUnavailable as exc:
        return ApplyResult(False, str(exc), spec.name), None
    with conn:
        started = time.perf_counter()
        try:
            conn.execute(spec.create_sql(if_not_exists=True))
            conn.execute(spec.analyze_sql())
        except psycopg.Error as exc:
            error = secrets_scrub(str(exc).strip())
            return ApplyResult(False, f"CREATE STATISTICS {spec.name} failed: {error}", None), None
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        baseline = _served_counters(conn, list(log.queryids))
    message = (
        f"Statistics {spec.name} created and {spec.schema}.{spec.table} "
        f"({', '.join(spec.columns)}) analyzed in {elapsed_ms:,.0f} ms."
    )
    return ApplyResult(True, message, spec.name, elapsed_ms=elapsed_ms), baseline


# --- the baseline the next audit judges the apply against ---


def _served_counters(conn: psycopg.Connection, queryids: list[int]) -> dict[str, list[float]]:
    """Cumulative (calls, total ms) of the served queries now: the apply's baseline."""
    if not queryids:
        return {}
    try:
        rows = pgss_read(conn, queryids=queryids)
    except PgssUnavailable:
        return {}
    served: dict[str, list[float]] = {}
    for row in rows:  # one entry per role that ran the query
        calls, total = served.setdefault(str(row.queryid), [0.0, 0.0])
        served[str(row.queryid)] = [calls + row.calls, total + row.total_time_ms]
    return served


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
    calls = total = 0.0
    for snap in audit.snapshots.filter(queryid__in=log.queryids):
        calls += snap.calls
        total += snap.total_time_ms
    return total / calls if calls > 0 else None
