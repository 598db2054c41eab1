"""The audit report: one JSON-ready dict per audit (stored on AuditRun.report), and its text."""

import dataclasses
from collections.abc import Iterable, Sequence

from optimizations.models import OptimizationLog
from pgaccess.qualstats import QualstatsState
from pgaccess.server_log import ServerLogState
from presentation.formatting import bytes_text

from .escaping import plain_text

# Queries listed in the text report (the JSON lists them all).
TEXT_MAX_QUERIES = 20
# Rationale lines per recommendation in the text report (the JSON has it all).
TEXT_RATIONALE_LINES = 8
# What each reason the collector leaves a statement out for means (collector.py).
LEFT_OUT_REASONS = {
    "utility": "utility statements (SET, VACUUM, DDL, transactions)",
    "no_table": "naming no table (such as function calls: what a function runs inside "
    "is not audited)",
    "catalog": "reading only system catalogs",
    "architect": "the architect's own",
    "no_text": "without text (pg_stat_statements lost it)",
}


def report_build(*, audit, found, logs: Sequence[OptimizationLog], settled: Iterable[str]) -> dict:
    """The whole report of a finished audit; `settled` are fingerprints recorded before."""
    settled = set(settled)
    collection = found.collection
    advice = found.advice
    costs = getattr(advice, "query_costs", {}) or {}
    return {
        "audit_id": str(audit.id),
        "target": audit.target.name,
        "status": audit.status,
        "started_at": audit.started_at.isoformat() if audit.started_at else None,
        "finished_at": audit.finished_at.isoformat() if audit.finished_at else None,
        "error": audit.error,
        "phase_seconds": dict(audit.phase_seconds),
        "verification": found.verify_note,
        "collector": {
            "rows_read": collection.rows_read,
            "workload_queries": len(collection.stats),
            "left_out": dict(collection.left_out),
            "stats_reset": collection.stats_reset.isoformat() if collection.stats_reset else None,
        },
        "queries": [
            {
                "queryid": stat.queryid,
                "calls": stat.calls,
                "mean_ms": round(stat.mean_time_ms, 3),
                "total_ms": round(stat.total_time_ms, 3),
                "generic_cost": costs.get(stat.queryid),
                "timeouts": stat.timeouts,
                "query": stat.query,
            }
            for stat in collection.slow
        ],
        "skipped": [
            {"queryid": s.queryid, "reason": s.reason, "query": s.query}
            for s in (getattr(advice, "skipped", None) or [])
        ],
        "recommendations": [_recommendation(log, log.fingerprint in settled) for log in logs],
        "dropped_for_slowdown": _dropped(advice, found.verifications),
        "budget": _budget(getattr(advice, "budget", None)),
        # {budget_bytes, indexes, relative_cost} per point: the admin's audit page charts it.
        "frontier": [dataclasses.asdict(p) for p in getattr(advice, "frontier", None) or []],
        "qualstats": _qualstats(found.qualstats),
        "server_log": _server_log(found.server_log),
        "statistics": _statistics(found.statistics),
    }


def _statistics(advice) -> dict | None:
    """What the extended-statistics check ran and what it left out, with why."""
    if advice is None:
        return None
    return {
        "queries_run": advice.queries_run,
        "proposed": len(advice.recommendations),
        "not_proposed": [
            {"table": n.table, "columns": list(n.columns), "reason": n.reason}
            for n in advice.not_proposed
        ],
    }


def _dropped(advice, verifications) -> list[dict]:
    """The indexes verification took out of the set: each slowed a query more than it saved."""
    dropped = []
    for rec in getattr(advice, "recommendations", None) or []:
        verification = verifications.get(rec.fingerprint)
        if verification is not None and verification.dropped:
            dropped.append(
                {
                    "ddl": rec.ddl,
                    "fingerprint": rec.fingerprint,
                    "slowdowns": [dataclasses.asdict(s) for s in verification.slowdowns],
                }
            )
    return dropped


def _budget(use) -> dict | None:
    """The storage budget the set was chosen under and how much of it the set takes."""
    return None if use is None else dataclasses.asdict(use)


def _qualstats(status) -> dict | None:
    if status is None:
        return None
    return {"state": status.state, "fix": status.fix, "sample_rate": status.sample_rate}


def _server_log(found) -> dict | None:
    if found is None:
        return None
    return {
        "state": found.status.state,
        "fix": found.status.fix,
        "bytes_read": found.bytes_read,
        "files": list(found.files),
        "queries": [
            {
                "query": query.query,
                "timeouts": query.timeouts,
                "slow_runs": query.slow_runs,
                "longest_ms": query.longest_ms,
            }
            for query in found.queries
        ],
    }


def _recommendation(log: OptimizationLog, already_recorded: bool) -> dict:
    return {
        "kind": log.kind,
        "table": log.table_name,
        "columns": list(log.columns),
        "ddl": log.ddl,
        "recommendation": log.recommendation,
        "estimated_cost_before": log.estimated_cost_before,
        "estimated_cost_after": log.estimated_cost_after,
        "measured_ms_before": log.measured_ms_before,
        "measured_ms_after": log.measured_ms_after,
        "performance_gain_percent": log.performance_gain,
        "index_size_bytes": log.index_size_bytes,
        "built_size_bytes": log.details.get("built_size_bytes"),
        "queryids": list(log.queryids),
        "fingerprint": log.fingerprint,
        "verification_error": log.details.get("verification_error"),
        "slowdowns": log.details.get("slowdowns", []),
        "already_recorded": already_recorded,
        # Scored and explained only when recorded by this audit (repeats were not).
        "confidence": None if already_recorded else log.confidence,
        "confidence_breakdown": None if already_recorded else log.confidence_breakdown,
        "rationale": None if already_recorded else log.explanation,
        "similar_past": [] if already_recorded else log.details.get("similar", []),
    }


def outcome_summary(log: OptimizationLog) -> dict:
    """An applied recommendation this audit judged: did its gain come?"""
    check = (log.details or {}).get("outcome_check", {})
    return {
        "id": str(log.pk),
        "ddl": log.ddl,
        "outcome": log.outcome,
        "mean_ms_before": check.get("before_ms"),
        "mean_ms_after": log.mean_ms_after_apply,
    }


def report_text(report: dict) -> str:
    """A readable report for a terminal; query text, names and errors cannot send it
    control sequences (plain_text)."""
    lines = [
        f"Audit {report['audit_id']} of target {report['target']}: {report['status']}",
    ]
    if report.get("error"):
        lines.append(f"Error: {report['error']}")
    phases = report.get("phase_seconds") or {}
    if phases:
        lines.append("Phases: " + ", ".join(f"{name} {secs:.2f}s" for name, secs in phases.items()))
    if report.get("verification"):
        lines.append(f"Verification: {report['verification']}")
    queries = report.get("queries", [])
    if "queries" in report:
        lines += ["", f"Slow queries analyzed: {len(queries)}"]
    left_out = (report.get("collector") or {}).get("left_out") or {}
    if left_out:
        lines.append(
            "  Left out: "
            + ", ".join(
                f"{count} {LEFT_OUT_REASONS.get(reason, reason)}"
                for reason, count in sorted(left_out.items())
            )
        )
    for query in queries[:TEXT_MAX_QUERIES]:
        # A timed-out statement's calls are its timeouts, its mean the assumed timeout.
        timed_out = f"timed out {query['timeouts']}x  " if query.get("timeouts") else ""
        lines.append(
            f"  {query['queryid']:>20}  {query['calls']:>8} calls  {query['mean_ms']:>10.2f} ms  "
            f"{timed_out}{_short(query['query'])}"
        )
    if len(queries) > TEXT_MAX_QUERIES:
        lines.append(f"  ... and {len(queries) - TEXT_MAX_QUERIES} more (--json lists all)")
    lines += _beyond_pgss_lines(report)
    skipped = report.get("skipped", [])
    if skipped:
        lines += ["", f"Queries not costed: {len(skipped)}"]
        lines += [f"  {s['queryid']:>20}  {s['reason']}" for s in skipped]
    recommendations = report.get("recommendations", [])
    if "recommendations" in report:
        lines += ["", f"Recommendations: {len(recommendations)}"]
    for rec in recommendations:
        seen = " (recorded before)" if rec["already_recorded"] else ""
        lines.append(f"  [{rec['kind']}] {rec['recommendation']}{seen}")
        if rec["ddl"] and rec["ddl"] not in rec["recommendation"]:
            lines.append(f"      {rec['ddl']}")
        if rec.get("confidence") is not None:
            lines.append(f"      confidence {rec['confidence']:.2f}")
        rationale = [
            line
            for line in (rec.get("rationale") or "").splitlines()
            if line.strip() and line.strip() != rec["recommendation"].strip()
        ]
        lines += [f"      {line}" for line in rationale[:TEXT_RATIONALE_LINES]]
        lines += [f"      {_slowdown_text(slow)}" for slow in rec.get("slowdowns") or []]
    dropped = report.get("dropped_for_slowdown") or []
    if dropped:
        lines += ["", f"Taken out of the set, measured slowing another query: {len(dropped)}"]
        for rec in dropped:
            lines.append(f"  {rec['ddl']}")
            lines += [f"      {_slowdown_text(slow)}" for slow in rec["slowdowns"]]
    lines += _budget_lines(report)
    small = report.get("small_drops_left_out") or {}
    if small.get("count"):
        lines.append(
            f"  Not proposed: {small['count']} unused or duplicate index(es) smaller than "
            f"{bytes_text(small['below_bytes'])} (DBARCHITECT_UNUSED_INDEX_MIN_BYTES)"
        )
    outcomes = report.get("outcomes") or []
    if outcomes:
        lines += ["", "Applied recommendations checked:"]
        lines += [
            f"  {o['outcome']}: {_ms(o['mean_ms_before'])} -> {_ms(o['mean_ms_after'])}  {o['ddl']}"
            for o in outcomes
        ]
    proposal = report.get("proposal")
    if proposal:
        where = proposal.get("pr_url") or proposal.get("branch") or ""
        why = proposal.get("error") or proposal.get("reason") or ""
        lines += ["", f"Proposal: {proposal['status']} {where} {why}".rstrip()]
        if proposal.get("commit"):
            lines.append(f"  commit {proposal['commit'][:12]}: {', '.join(proposal['files'])}")
        lines += [f"  {note}" for note in proposal.get("notes", [])]
        lines += [f"  not proposed {h['id']}: {h['reason']}" for h in proposal.get("held_back", [])]
    return plain_text("\n".join(lines))


def _slowdown_text(slow: dict) -> str:
    """A slowdown verification measured, in numbers (verifier.Slowdown)."""
    verdict = "kept: it saves more" if slow["kept"] else "dropped"
    return (
        f"slows query {slow['queryid']}: {slow['ms_before']:.1f} ms -> {slow['ms_after']:.1f} ms "
        f"({slow['ms_without_index']:.1f} ms without it); saves {slow['saving_ms']:,.0f} ms, "
        f"costs {slow['loss_ms']:,.0f} ms (x calls): {verdict}"
    )


def _budget_lines(report: dict) -> list[str]:
    """Which budget was applied, and the cost-vs-size frontier as a small table."""
    budget = report.get("budget")
    lines = []
    if budget:
        limit = budget["budget_bytes"]
        applied = budget["budget"]
        if budget.get("tables_bytes") is not None and limit is not None:
            applied += f" ({bytes_text(limit)})"
        of = f" of {bytes_text(limit)}" if limit is not None else ""
        lines += [
            "",
            f"Index budget: {applied}; the recommended set takes "
            f"{bytes_text(budget['used_bytes'])}{of} ({budget['size_estimate']} sizes)",
        ]
    frontier = report.get("frontier") or []
    if frontier:
        lines.append("  Frontier:      budget  indexes  relative cost")
        lines += [
            f"  {bytes_text(p['budget_bytes']):>20}  {len(p['indexes']):>7}  "
            f"{p['relative_cost']:>13.4f}"
            for p in frontier
        ]
    return lines


def _beyond_pgss_lines(report: dict) -> list[str]:
    """What pg_qualstats and the server's log add, or, once each, how to get it."""
    lines = []
    qualstats = report.get("qualstats")
    if qualstats and qualstats["state"] != QualstatsState.READY:
        lines += [
            "",
            f"pg_qualstats: {qualstats['state']}. With it the audit sees the constants each "
            "predicate is really run with and how many rows it keeps (pg_stat_statements shows "
            f"$1). To enable it: {qualstats['fix']}",
        ]
    server_log = report.get("server_log")
    if server_log and server_log["state"] != ServerLogState.READY:
        lines += [
            "",
            f"Server log: {server_log['state']}. Statements cancelled by statement_timeout "
            f"never reach pg_stat_statements; to read them from the log: {server_log['fix']}",
        ]
    elif server_log and server_log["queries"]:
        lines += [
            "",
            f"From the server's log (not in pg_stat_statements): {len(server_log['queries'])}",
        ]
        for query in server_log["queries"][:TEXT_MAX_QUERIES]:
            fared = f"timed out {query['timeouts']}x" if query["timeouts"] else ""
            if query["longest_ms"] is not None:
                fared = ", ".join(filter(None, [fared, f"longest {_ms(query['longest_ms'])}"]))
            lines.append(f"  {fared:<36}  {_short(query['query'])}")
    return lines


def _ms(value) -> str:
    return "?" if value is None else f"{value:.2f} ms"


def _short(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."
