"""Verify: build each recommended index for real, measure its queries before and after.

For each recommendation, in one transaction that is always rolled back: a lock timeout,
CREATE INDEX (not CONCURRENTLY: that cannot run in a transaction, and the rollback is what
makes the build harmless), then EXPLAIN (ANALYZE, BUFFERS) of the heaviest query it serves,
with representative parameter values (pg_stats, see parameters.py): the case the advisor
costed and the most common values, their times added up. The "before" timings are taken
once per statement, not once per recommendation, and a slow statement runs once (a quick
one a few times, median): verifying costs little more than building the indexes.

A build takes a SHARE lock on its table (writes wait) while it runs: verify on a copy, or
where the target allows it. Only read-only statements are executed; a recommendation that
serves only writes is reported as not measured. Where no build can work (a hot standby, a
read-only role, a table the role does not own, a schema it cannot CREATE in), the reason
is said in words before anything is measured for nothing.

Then the set as a whole: every collected query whose plan changes with all the built
indexes present (not only the ones an index was chosen for) is timed before and after. A
query made measurably slower (SlowdownBar) is traced to the index whose removal restores
it; that index is dropped from the set unless what it saves elsewhere (ms x calls)
outweighs the loss, and either way the slowdown is kept, with its numbers, as data.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import errors, sql

from pgaccess.catalog import search_path_widened
from pgaccess.ddl import DdlError, index_spec_parse
from pgaccess.explain import explain_analyze, plan_nodes
from pgaccess.generic_plan import prepared_statements_forget
from pgaccess.marker import cursor
from pgaccess.session import Savepoint, savepoint

from . import analysis as an
from .advisor import IndexRecommendation, QueryLike, RepresentativeStatement
from .advisor import representative_statements as advisor_representative_statements

logger = logging.getLogger(__name__)

# A query measured this fast (ms) on its first run gets this many more runs (median taken);
# a slower one keeps its single run: repeating a seconds-long scan would cost more than
# building the index, and its speed-up dwarfs the noise anyway.
QUICK_MS = 50.0
QUICK_RUNS = 3


@dataclass(frozen=True)
class SlowdownBar:
    """When a query is measurably slower: `ratio` times its time before and `ms` more."""

    ratio: float
    ms: float

    def slower(self, ms_before: float, ms_after: float) -> bool:
        return ms_after > ms_before * self.ratio and ms_after - ms_before > self.ms


def slowdown_bar() -> SlowdownBar:
    """The settings' bar (DBARCHITECT_SLOWDOWN_RATIO, DBARCHITECT_SLOWDOWN_MS)."""
    from django.conf import settings

    return SlowdownBar(settings.DBARCHITECT_SLOWDOWN_RATIO, settings.DBARCHITECT_SLOWDOWN_MS)


@dataclass(frozen=True)
class Slowdown:
    """A query the recommended set makes measurably slower, and what its index does."""

    queryid: int
    ms_before: float  # without the set (its cases summed, as every measurement here)
    ms_after: float  # with every index of the set built
    ms_without_index: float  # with the set less this index
    restored: bool  # removing this index takes back the slowdown (or most of it)
    saving_ms: float  # calls x ms this index saves on the queries it serves (measured)
    loss_ms: float  # calls x ms the slowdown costs this query
    kept: bool  # the index stays in the set: its saving outweighs the loss, or dropping
    #             it would not restore the query


@dataclass
class Verification:
    fingerprint: str
    ms_before: float | None
    ms_after: float | None
    build_ms: float | None
    plan_before: dict | None
    plan_after: dict | None
    error: str | None
    queryid: int | None = None  # the query the ms_* numbers are of (the heaviest served)
    per_query: dict[int, tuple[float, float]] = field(default_factory=dict)
    # Queries the whole set made slower that this index is the cause of (see Slowdown);
    # `dropped`: the index leaves the set for it.
    slowdowns: list[Slowdown] = field(default_factory=list)
    dropped: bool = False

    @property
    def speedup(self) -> float | None:
        if not self.ms_before or self.ms_after is None:
            return None
        return self.ms_before / max(self.ms_after, 0.001)


@dataclass(frozen=True)
class _Measurement:
    ms: float
    plan: dict


@dataclass(frozen=True)
class _Failed:
    """A statement whose measurement failed, and why."""

    reason: str


def verify(
    conn: psycopg.Connection,
    recommendations: Sequence[IndexRecommendation],
    queries: Mapping[int, QueryLike],
    *,
    lock_timeout_ms: int,
    workload: Mapping[int, QueryLike] | None = None,
    bar: SlowdownBar | None = None,
) -> list[Verification]:
    """One Verification per recommendation, in order; failures carry their reason.

    `workload`: the queries the whole set must not make slower (default: `queries`)."""
    workload = dict(workload if workload is not None else queries)
    served = [
        queries[q]
        for q in sorted({q for rec in recommendations for q in rec.queryids})
        if q in queries
    ]
    checked = list({**workload, **{q.queryid: q for q in served}}.values())
    relations = {rel for query in checked for rel in an.analyze_query(query.query).relations}
    # The queries run where the advisor planned them (see catalog.search_path_widened).
    with search_path_widened(conn, relations):
        representative = advisor_representative_statements(conn, checked)
        before: dict[str, _Measurement | _Failed] = {}
        results = _verify_all(conn, recommendations, representative, before, lock_timeout_ms)
        try:
            _set_check(
                conn,
                list(zip(recommendations, results, strict=True)),
                {q.queryid: q for q in checked},
                representative,
                before,
                bar=bar or slowdown_bar(),
                lock_timeout_ms=lock_timeout_ms,
            )
        except psycopg.Error as exc:  # each index was measured; only the set check is lost
            logger.warning("the set check failed: %s", exc)
        prepared_statements_forget(conn)
        return results


def verification_blocker(conn: psycopg.Connection) -> str | None:
    """Why no index can be built through `conn` at all (a hot standby, a read-only role or
    database), or None. Said once, before any query is measured for nothing."""
    with cursor(conn) as cur:
        cur.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')::bool")
        in_recovery, read_only = cur.fetchone()
    copy = "set DBARCHITECT_VERIFY=database:<a writable copy of it> to measure them"
    if in_recovery:
        return (
            "this database is a hot standby (a read replica): indexes can only be "
            f"built on its primary; {copy}"
        )
    if read_only:
        return (
            "this database only allows read-only transactions "
            "(default_transaction_read_only = on for this role or database), so no index can "
            f"be built there; {copy}"
        )
    return None


def _build_blocker(conn: psycopg.Connection, rec: IndexRecommendation) -> str | None:
    """Why this session may not build `rec` (CREATE INDEX needs the table's owner or a member
    of its role, and CREATE on its schema), in words naming the role, table and grant."""
    with cursor(conn) as cur:
        cur.execute(
            """
            SELECT quote_ident(current_user), quote_ident(n.nspname), c.relowner::regrole::text,
                   pg_has_role(c.relowner, 'USAGE'),
                   has_schema_privilege(c.relnamespace, 'CREATE')
            FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.oid = to_regclass(%s)""",
            (sql.Identifier(rec.schema, rec.table).as_string(conn),),
        )
        row = cur.fetchone()
    if row is None:
        return None  # the build itself says what is missing
    user, schema, owner, owns, can_create = row
    table = f"{rec.schema}.{rec.table}"
    copy = f"or set DBARCHITECT_VERIFY=database:<a copy where {user} may build it>"
    if not owns:
        return (
            f"{user} does not own {table}: CREATE INDEX needs its owner ({owner}) or a member "
            f"of that role; verify as one of those, {copy}"
        )
    if not can_create:
        return (
            f"{user} has no CREATE privilege on schema {schema}, which CREATE INDEX "
            f"needs; GRANT CREATE ON SCHEMA {schema} TO {user}, {copy}"
        )
    return None


def _verify_all(
    conn, recommendations, representative, before, lock_timeout_ms
) -> list[Verification]:
    results = []
    for rec in recommendations:
        cannot_build = _build_blocker(conn, rec)
        if cannot_build:
            results.extend(not_built([rec], cannot_build))
            continue
        statements = _statements_for(rec, representative)
        # The heaviest query it serves that can be run stands for it (queryids come
        # heaviest first): measuring every served query would cost more than the builds.
        measurable = [q for q in rec.queryids if _runnable(statements.get(q))][:1]
        if not measurable:
            results.append(_unmeasured(rec, statements))
            continue
        variants = {qid: _variants(rec, qid, representative) for qid in measurable}
        for text in (t for texts in variants.values() for t in texts):
            if text not in before:
                before[text] = _measure_safely(conn, text)
        results.append(_verify_one(conn, rec, variants, before, lock_timeout_ms))
    return results


def _statements_for(
    rec: IndexRecommendation, representative: dict[int, RepresentativeStatement]
) -> dict[int, RepresentativeStatement]:
    """The advisor's own costed statement where it has one (the case it proved on paper),
    else the query with representative values."""
    statements = dict(representative)
    for qid, text in rec.statements.items():
        known = representative.get(qid)
        if known is not None and known.text is not None:
            statements[qid] = RepresentativeStatement(qid, text, known.is_select)
    return statements


def _variants(
    rec: IndexRecommendation, qid: int, representative: dict[int, RepresentativeStatement]
) -> tuple[str, ...]:
    """The statements one query is measured with: the case the advisor costed (a rare
    value, when that is what makes the query slow) and the query with the columns' most
    common values (what a skewed workload runs most). Their times are added up, so a gain
    on one case cannot hide a loss on the other, nor a fast case hide the slow one."""
    texts = (rec.statements.get(qid), representative[qid].text)
    return tuple(dict.fromkeys(text for text in texts if text))


def _runnable(statement: RepresentativeStatement | None) -> bool:
    return statement is not None and statement.text is not None and statement.is_select


def _unmeasured(rec: IndexRecommendation, statements) -> Verification:
    reasons = []
    for qid in rec.queryids:
        statement = statements.get(qid)
        if statement is None:
            reasons.append(f"query {qid} was not collected in this audit")
        elif statement.error:
            reasons.append(f"query {qid}: {statement.error}")
        elif not statement.is_select:
            reasons.append(f"query {qid} writes rows; EXPLAIN ANALYZE would execute it")
    return Verification(
        rec.fingerprint, None, None, None, None, None, "not measured: " + "; ".join(reasons)
    )


def not_built(recommendations: Sequence[IndexRecommendation], why: str) -> list[Verification]:
    """Verifications of indexes that could not be built, each saying why."""
    return [
        Verification(
            rec.fingerprint, None, None, None, None, None, f"the index was not built: {why}"
        )
        for rec in recommendations
    ]


def _verify_one(conn, rec, variants, before, lock_timeout_ms) -> Verification:
    queryids = list(variants)
    result = Verification(rec.fingerprint, None, None, None, None, None, None, queryids[0])
    failed = [
        m.reason
        for texts in variants.values()
        for t in texts
        if isinstance(m := before[t], _Failed)
    ]
    usable = [q for q in queryids if all(isinstance(before[t], _Measurement) for t in variants[q])]
    if not usable:
        result.error = f"before: {failed[0]}"
        return result
    main = usable[0]
    result.queryid = main
    result.ms_before, result.plan_before, slowest = _total([before[t] for t in variants[main]])
    try:
        build = _build_statement(rec.ddl)
    except DdlError:
        result.error = f"the DDL cannot be built: not a CREATE INDEX statement: {rec.ddl}"
        return result
    try:
        with conn.transaction(force_rollback=True), cursor(conn) as cur:
            cur.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                (f"{int(lock_timeout_ms)}ms",),
            )
            started = time.perf_counter()
            cur.execute(sql.SQL(build))
            result.build_ms = round((time.perf_counter() - started) * 1000, 3)
            for qid in usable:
                after = [_measure(conn, text) for text in variants[qid]]
                before_ms = sum(before[t].ms for t in variants[qid])
                result.per_query[qid] = (before_ms, sum(m.ms for m in after))
                if qid == main:
                    result.ms_after = result.per_query[qid][1]
                    result.plan_after = after[slowest].plan
    except errors.LockNotAvailable:
        result.error = (
            f"lock timeout: {rec.schema}.{rec.table} was busy for more than "
            f"{lock_timeout_ms} ms; not built"
        )
    except errors.QueryCanceled as exc:
        result.error = f"timed out: {exc.diag.message_primary}"
    except psycopg.Error as exc:
        result.error = f"{type(exc).__name__}: {exc.diag.message_primary or exc}"
    if result.error:
        result.ms_after = None
        result.plan_after = None
    return result


def _total(measurements: list[_Measurement]) -> tuple[float, dict, int]:
    """The summed time of a query's cases, the plan of its slowest case and that case's
    position (the after-plan shown is of the same case)."""
    slowest = max(range(len(measurements)), key=lambda i: measurements[i].ms)
    return sum(m.ms for m in measurements), measurements[slowest].plan, slowest


def _build_statement(ddl: str) -> str:
    """The recommendation's DDL as a plain CREATE INDEX, which can run in a transaction."""
    return index_spec_parse(ddl).create_sql(if_not_exists=False, concurrent=False)


def _measure_safely(conn: psycopg.Connection, text: str) -> _Measurement | _Failed:
    try:
        with conn.transaction(force_rollback=True):
            return _measure(conn, text)
    except psycopg.Error as exc:
        return _Failed(f"{type(exc).__name__}: {exc.diag.message_primary or exc}")


def _measure(conn: psycopg.Connection, text: str) -> _Measurement:
    """EXPLAIN ANALYZE: one run, or for a quick query the median of a few warm ones."""
    first = _explain_analyze(conn, text)
    if first.ms >= QUICK_MS:
        return first
    warm = [_explain_analyze(conn, text) for _ in range(QUICK_RUNS)]
    middle = statistics.median_low([m.ms for m in warm])
    return next(m for m in warm if m.ms == middle)


def _explain_analyze(conn: psycopg.Connection, text: str) -> _Measurement:
    top = explain_analyze(conn, text)
    return _Measurement(ms=float(top["Execution Time"]), plan=top)


# --- the set as a whole: no query slower ------------------------------------------------


def _set_check(conn, verified, workload, representative, before, *, bar, lock_timeout_ms):
    """Time every query whose plan the built set changes; trace each slowdown to its index
    and drop that index where it costs more than it saves (Verification.slowdowns)."""
    built = [(rec, result) for rec, result in verified if result.build_ms is not None]
    texts = {
        qid: _workload_texts(qid, [rec for rec, _ in built], representative)
        for qid in workload
        if _runnable(representative.get(qid))
    }
    if not built or not texts:
        return
    shapes = {qid: _shapes(conn, variants) for qid, variants in texts.items()}
    shapes = {qid: shape for qid, shape in shapes.items() if shape is not None}
    with _set_built(conn, [rec for rec, _ in built], lock_timeout_ms) as present:
        if not present:
            return
        changed = [qid for qid, shape in shapes.items() if _shapes(conn, texts[qid]) != shape]
        after = {qid: _measured_total(conn, texts[qid]) for qid in changed}
    changed = [qid for qid in changed if after[qid] is not None]
    for text in (t for qid in changed for t in texts[qid]):
        if text not in before:
            before[text] = _measure_safely(conn, text)
    slowed = {}
    for qid in changed:
        measured = [before[t] for t in texts[qid]]
        if all(isinstance(m, _Measurement) for m in measured):
            ms_before = sum(m.ms for m in measured)
            if bar.slower(ms_before, after[qid]):
                slowed[qid] = (ms_before, after[qid])
    if not slowed:
        return
    logger.info("the recommended set slows queries %s: finding the indexes", sorted(slowed))
    with _set_built(conn, [rec for rec, _ in built], lock_timeout_ms) as present:
        for qid, (ms_before, ms_after) in slowed.items():
            found = _culprit(conn, texts[qid], present, bar, ms_before)
            if found is None:
                continue
            rec, ms_without = found
            result = next(result for r, result in built if r is rec)
            # Restored: no longer measurably slower, or most of the loss taken back (a
            # query of a few ms moves by more than the bar's ratio on a busy server).
            restored = not bar.slower(ms_before, ms_without) or (
                ms_without - ms_before < (ms_after - ms_before) / 2
            )
            saving = sum(
                max(b - a, 0.0) * workload[q].calls
                for q, (b, a) in result.per_query.items()
                if q in workload
            )
            loss = (ms_after - ms_before) * workload[qid].calls
            kept = saving > loss or not restored
            result.slowdowns.append(
                Slowdown(
                    queryid=qid,
                    ms_before=round(ms_before, 3),
                    ms_after=round(ms_after, 3),
                    ms_without_index=round(ms_without, 3),
                    restored=restored,
                    saving_ms=round(saving, 3),
                    loss_ms=round(loss, 3),
                    kept=kept,
                )
            )
            result.dropped = result.dropped or not kept


def _workload_texts(qid, recommendations, representative) -> tuple[str, ...]:
    """The statements a query is timed with in the set check: each case an index was
    costed on, and its representative values (see _variants)."""
    texts = [rec.statements.get(qid) for rec in recommendations]
    return tuple(dict.fromkeys(t for t in [*texts, representative[qid].text] if t))


@contextmanager
def _set_built(conn, recommendations, lock_timeout_ms) -> Iterator[list[IndexRecommendation]]:
    """A rolled-back transaction with every index of `recommendations` built; it gives the
    ones that built (one that fails is rolled back to a savepoint and left out)."""
    present = []
    with conn.transaction(force_rollback=True), cursor(conn) as cur:
        cur.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",))
        for rec in recommendations:
            try:
                with savepoint(conn, Savepoint.ATTEMPT):
                    cur.execute(sql.SQL(_build_statement(rec.ddl)))
                present.append(rec)
            except (psycopg.Error, DdlError) as exc:
                logger.info("set check: %s not built: %s", rec.name, exc)
        yield present


def _culprit(conn, texts, present, bar, ms_before) -> tuple[IndexRecommendation, float] | None:
    """The index of the set whose removal makes the query fastest, and its time then:
    each index on a table the slowed plan reads is dropped in turn, under a savepoint."""
    with cursor(conn) as cur:
        cur.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(texts[0])))
        plan = cur.fetchone()[0]
    read = {node.get("Relation Name") for text_plan in plan for node in plan_nodes(text_plan)}
    best = None
    for rec in (rec for rec in present if rec.table in read):
        without = conn.transaction(savepoint_name=str(Savepoint.ATTEMPT), force_rollback=True)
        with without, cursor(conn) as cur:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(rec.schema, rec.name)))
            ms = _measured_total(conn, texts)
        if ms is None:
            continue
        if best is None or ms < best[1]:
            best = (rec, ms)
        if not bar.slower(ms_before, ms):
            break  # this one alone restores the query
    return best


def _measured_total(conn, texts) -> float | None:
    """A query's cases' times added up, or None when one fails (rolled back to a savepoint)."""
    measured = [_measure_safely(conn, text) for text in texts]
    if any(isinstance(m, _Failed) for m in measured):
        return None
    return sum(m.ms for m in measured)


def _shapes(conn, texts) -> tuple | None:
    """The plan shapes of a query's cases (node types, tables, indexes, join kinds), or
    None when one does not plan (it is not checked then)."""
    shapes = []
    for text in texts:
        try:
            with savepoint(conn, Savepoint.ATTEMPT), cursor(conn) as cur:
                cur.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(sql.SQL(text)))
                document = cur.fetchone()[0]
        except psycopg.Error:
            return None
        shapes.append(_shape(document[0]["Plan"]))
    return tuple(shapes)


def _shape(node: dict) -> tuple:
    return (
        node.get("Node Type"),
        node.get("Relation Name"),
        node.get("Index Name"),
        node.get("Join Type"),
        node.get("Strategy"),
        tuple(_shape(child) for child in node.get("Plans", ())),
    )
