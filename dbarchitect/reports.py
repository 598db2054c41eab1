"""The audit report staff read in the admin and download as Markdown.

`audit_report_build` gathers what one audit found, recommended (and why) and skipped;
the admin page renders it, `audit_report_markdown` writes the same content as Markdown.
"""

import json
from dataclasses import dataclass

from optimizations.models import OptimizationLog
from presentation.recommendations import (
    ConfidenceComponent,
    confidence_components,
    number_or_none,
    percent_drop,
)

from .escaping import md_fence, md_lines, md_text
from .models import AuditRun, QuerySnapshot

# EXPLAIN (FORMAT JSON) keys shown under a plan node, in psql's order.
PLAN_DETAIL_KEYS = (
    "Index Cond",
    "Recheck Cond",
    "Hash Cond",
    "Merge Cond",
    "Join Filter",
    "Filter",
    "Sort Key",
    "Group Key",
)
# A query in a Markdown table cell is cut to this many characters (the full text is below).
TABLE_QUERY_CHARS = 120


@dataclass(frozen=True)
class ReportRecommendation:
    optimization: OptimizationLog
    why: str
    components: list[ConfidenceComponent]
    plan_before: str
    plan_after: str

    @property
    def estimated_gain_percent(self) -> float | None:
        return percent_drop(
            self.optimization.estimated_cost_before, self.optimization.estimated_cost_after
        )

    @property
    def measured_gain_percent(self) -> float | None:
        return percent_drop(
            self.optimization.measured_ms_before, self.optimization.measured_ms_after
        )


@dataclass(frozen=True)
class SkippedQuery:
    query: str
    reason: str
    queryid: int | None


@dataclass(frozen=True)
class LoggedShape:
    """A statement shape the server's log had and pg_stat_statements did not."""

    query: str
    timeouts: int
    slow_runs: int
    longest_ms: float | None


@dataclass(frozen=True)
class BeyondPgss:
    """What pg_qualstats and the server's log added to the audit, or what they need."""

    qualstats_state: str = ""
    qualstats_fix: str = ""
    server_log_state: str = ""
    server_log_fix: str = ""
    logged: tuple[LoggedShape, ...] = ()


def beyond_pgss(stored: dict) -> BeyondPgss:
    """From the audit's stored report (dbarchitect.report): older audits have neither."""
    qualstats = stored.get("qualstats") if isinstance(stored.get("qualstats"), dict) else {}
    log = stored.get("server_log") if isinstance(stored.get("server_log"), dict) else {}
    return BeyondPgss(
        qualstats_state=str(qualstats.get("state") or ""),
        qualstats_fix=str(qualstats.get("fix") or ""),
        server_log_state=str(log.get("state") or ""),
        server_log_fix=str(log.get("fix") or ""),
        logged=tuple(
            LoggedShape(
                query=str(item.get("query") or ""),
                timeouts=_int(item.get("timeouts")) or 0,
                slow_runs=_int(item.get("slow_runs")) or 0,
                longest_ms=number_or_none(item.get("longest_ms")),
            )
            for item in log.get("queries") or []
            if isinstance(item, dict)
        ),
    )


@dataclass(frozen=True)
class AuditReport:
    audit: AuditRun
    found: list[QuerySnapshot]
    recommendations: list[ReportRecommendation]
    skipped: list[SkippedQuery]
    # From the audit's stored JSON report (dbarchitect.report): how verification went, and
    # the recommendations this audit found again that an earlier audit had recorded.
    verification: str
    repeated: list[dict]
    beyond: BeyondPgss = BeyondPgss()


def audit_report_build(*, audit: AuditRun) -> AuditReport:
    """Everything the report shows, read once: slow queries, recommendations, skips."""
    found = list(audit.snapshots.filter(is_slow=True).order_by("-total_time_ms"))
    optimizations = audit.optimizations.select_related("target").order_by("-impact", "-confidence")
    recommendations = [
        ReportRecommendation(
            optimization=log,
            why=log.explanation or log.recommendation,
            components=confidence_components(log.confidence_breakdown),
            plan_before=plan_text(log.plan_before),
            plan_after=plan_text(log.plan_after),
        )
        for log in optimizations
    ]
    skipped = [skipped_query(item) for item in audit.skipped or []]
    stored = audit.report if isinstance(audit.report, dict) else {}
    repeated = [
        rec
        for rec in stored.get("recommendations") or []
        if isinstance(rec, dict) and rec.get("already_recorded")
    ]
    return AuditReport(
        audit=audit,
        found=found,
        recommendations=recommendations,
        skipped=skipped,
        verification=str(stored.get("verification") or ""),
        repeated=repeated,
        beyond=beyond_pgss(stored),
    )


def skipped_query(item: object) -> SkippedQuery:
    """One entry of AuditRun.skipped: a dict with query/reason (and queryid), or plain text."""
    if isinstance(item, dict):
        return SkippedQuery(
            query=str(item.get("query") or item.get("query_text") or ""),
            reason=str(item.get("reason") or item.get("why") or "no reason recorded"),
            queryid=_int(item.get("queryid")),
        )
    return SkippedQuery(query="", reason=str(item), queryid=None)


def plan_text(plan: object) -> str:
    """An EXPLAIN (FORMAT JSON) plan as the indented text psql prints; "" when there is none."""
    if not plan:
        return ""
    if isinstance(plan, str):
        return plan
    if isinstance(plan, list):
        plan = plan[0] if plan else {}
    if isinstance(plan, dict) and "Plan" in plan:
        plan = plan["Plan"]
    if not isinstance(plan, dict):
        return json.dumps(plan, indent=2)
    lines: list[str] = []
    _plan_lines(plan, depth=0, lines=lines)
    return "\n".join(lines)


def _plan_lines(node: dict, *, depth: int, lines: list[str]) -> None:
    pad = "      " * depth
    head = node.get("Node Type", "?")
    if node.get("Index Name"):
        head += f" using {node['Index Name']}"
    if node.get("Relation Name"):
        head += f" on {node['Relation Name']}"
        if node.get("Alias") and node["Alias"] != node["Relation Name"]:
            head += f" {node['Alias']}"
    if "Total Cost" in node:
        head += (
            f"  (cost={node.get('Startup Cost', 0):.2f}..{node['Total Cost']:.2f}"
            f" rows={node.get('Plan Rows', '?')})"
        )
    if "Actual Total Time" in node:
        head += (
            f" (actual time={node.get('Actual Startup Time', 0):.3f}"
            f"..{node['Actual Total Time']:.3f} rows={node.get('Actual Rows', '?')}"
            f" loops={node.get('Actual Loops', 1)})"
        )
    lines.append(f"{pad}->  {head}" if depth else head)
    for key in PLAN_DETAIL_KEYS:
        if key in node:
            value = node[key]
            value = ", ".join(map(str, value)) if isinstance(value, list) else value
            lines.append(f"{pad}{'      ' if depth else '  '}{key}: {value}")
    for child in node.get("Plans", []):
        _plan_lines(child, depth=depth + 1, lines=lines)


def audit_report_markdown(*, audit: AuditRun) -> str:
    """The report as one Markdown document (what the admin's download button serves)."""
    report = audit_report_build(audit=audit)
    out: list[str] = [
        f"# Audit report: {md_text(audit.target.name)}, {audit.started_at:%Y-%m-%d %H:%M} UTC",
        "",
    ]
    out += _summary(audit)
    if report.verification:
        out += ["", f"Verification: {md_text(report.verification)}"]
    out += ["", "## What was found", ""]
    if report.found:
        out += _table(
            ["queryid", "calls", "mean ms", "total ms", "query"],
            [
                [
                    s.queryid,
                    f"{s.calls} (timed out {s.timeouts}x)" if s.timeouts else s.calls,
                    f"{s.mean_time_ms:.2f}",
                    f"{s.total_time_ms:.1f}",
                    _cell(s.query),
                ]
                for s in report.found
            ],
        )
    else:
        out.append("No query passed the slow-query thresholds.")
    out += _beyond_markdown(report.beyond)
    out += ["", "## What was recommended and why", ""]
    if not report.recommendations:
        out.append("Nothing new was recommended.")
    for number, rec in enumerate(report.recommendations, start=1):
        if number > 1:
            out.append("")
        out += _recommendation(number, rec)
    if report.repeated:
        out += ["", "Found again, already recorded by an earlier audit (not repeated):", ""]
        out += [
            f"- {md_text(rec.get('recommendation') or rec.get('ddl'))}" for rec in report.repeated
        ]
    out += ["", "## Skipped queries", ""]
    if report.skipped:
        out += _table(
            ["queryid", "query", "reason"],
            [[s.queryid or "", _cell(s.query), s.reason] for s in report.skipped],
        )
    else:
        out.append("None.")
    if audit.error:
        out += ["", "## Error", "", *md_fence(audit.error)]
    return "\n".join(out).rstrip() + "\n"


def _beyond_markdown(beyond: BeyondPgss) -> list[str]:
    """pg_qualstats' state and the server log's statements, or what each needs."""
    out = ["", "## Beyond pg_stat_statements", ""]
    if beyond.qualstats_state:
        fix = f" To enable it: {md_text(beyond.qualstats_fix)}" if beyond.qualstats_fix else ""
        out.append(f"pg_qualstats: {md_text(beyond.qualstats_state)}.{fix}")
    if beyond.server_log_state:
        fix = f" To read it: {md_text(beyond.server_log_fix)}" if beyond.server_log_fix else ""
        out += ["", f"Server log: {md_text(beyond.server_log_state)}.{fix}"]
    if beyond.logged:
        out += ["", "From the server's log (not in pg_stat_statements):", ""]
        out += _table(
            ["timed out", "slow runs", "longest ms", "query"],
            [[q.timeouts, q.slow_runs, _fmt(q.longest_ms), _cell(q.query)] for q in beyond.logged],
        )
    return out if len(out) > 3 else []


def _summary(audit: AuditRun) -> list[str]:
    duration = audit.duration_seconds
    rows = [
        ["Audit", str(audit.pk)],
        ["Status", audit.status],
        ["Duration", f"{duration:.1f} s" if duration is not None else "not finished"],
        ["Verification", "on" if audit.verify else "off"],
        ["Queries collected", audit.queries_collected],
        ["Queries analyzed", audit.queries_analyzed],
        ["Recommendations", audit.recommendations_count],
    ]
    rows += [
        [f"Phase: {name}", f"{seconds:.2f} s"]
        for name, seconds in (audit.phase_seconds or {}).items()
        if isinstance(seconds, int | float)
    ]
    return _table(["", "value"], rows)


def _recommendation(number: int, rec: ReportRecommendation) -> list[str]:
    log = rec.optimization
    out = [
        f"### {number}. {md_text(log.recommendation)}",
        "",
        f"Kind: {log.kind}. Table: {md_text(log.table_name or '-')}. Status: {log.status}. "
        f"Confidence: {log.confidence:.2f}.",
        "",
        "Why: " + md_lines(rec.why),
        "",
    ]
    if log.ddl:
        out += [*md_fence(log.ddl, "sql"), ""]
    out += ["Query:", "", *md_fence(log.query_text, "sql"), ""]
    if rec.estimated_gain_percent is not None:
        out.append(
            f"- Estimated cost: {log.estimated_cost_before:.2f} -> {log.estimated_cost_after:.2f}"
            f" ({rec.estimated_gain_percent:.1f}% lower)"
        )
    if rec.measured_gain_percent is not None:
        out.append(
            f"- Measured: {log.measured_ms_before:.3f} ms -> {log.measured_ms_after:.3f} ms"
            f" ({rec.measured_gain_percent:.1f}% faster)"
        )
    if log.pr_url:
        out.append(f"- Pull request: {md_text(log.pr_url)}")
    if rec.components:
        out += ["", "Confidence breakdown:", ""]
        out += _table(
            ["component", "value", "weight", "score"],
            [[c.name, _fmt(c.value), _fmt(c.weight), _fmt(c.score)] for c in rec.components],
        )
    for title, text in (("Plan before", rec.plan_before), ("Plan after", rec.plan_after)):
        if text:
            out += ["", f"{title}:", "", *md_fence(text)]
    return out


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table; every cell escaped (md_text), so none breaks the table or the page."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in rows]
    return lines


def _cell(text: str) -> str:
    """One line cut to TABLE_QUERY_CHARS (the full text is below); _table escapes it."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= TABLE_QUERY_CHARS else flat[: TABLE_QUERY_CHARS - 1] + "…"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
