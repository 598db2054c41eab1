"""Why a recommendation helps: from the measured facts, plus an LLM's words when one is set.

The LLM only explains and suggests query rewrites; the DDL was chosen and proven by the
advisor and the verifier before the LLM sees it, and its answer is never parsed for DDL.
The facts are always part of the rationale, so it stays true when the LLM rambles.
"""

import json
import logging
from dataclasses import dataclass

from optimizations.models import OptimizationLog
from optimizations.services import SimilarOptimization
from presentation.formatting import size_text

logger = logging.getLogger(__name__)

# The prompt carries this much of each plan (JSON characters): enough for the top nodes.
PLAN_PROMPT_CHARS = 3_000
SYSTEM_PROMPT = (
    "You are a senior PostgreSQL performance engineer reviewing a recommendation that an "
    "automated advisor already chose and proved with the planner. Do not propose different "
    "DDL. In at most 120 words: say why the recommendation helps this query, name any risk "
    "(write overhead, size), and suggest query rewrites if they would help more. Plain text."
)


@dataclass(frozen=True)
class Rationale:
    text: str
    source: str  # "llm" or "facts"
    note: str = ""  # why no LLM was used, when it was not


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _similar_lines(similar: list[SimilarOptimization]) -> list[str]:
    lines = []
    for item in similar:
        past = item.optimization
        outcome = f", outcome {past.outcome}" if past.outcome else ""
        where = f" on {past.target.name}" if past.target_id else ""
        lines.append(
            f"- {past.recommendation.splitlines()[0][:200]}{where} "
            f"({past.status}{outcome}, {past.created_at:%Y-%m-%d}, "
            f"similarity {item.similarity:.2f})"
        )
    return lines


# What each kind of finding that verification does not time is, in a sentence.
UNTIMED_KINDS = {
    OptimizationLog.Kind.REWRITE: "a change to the query",
    OptimizationLog.Kind.DROP_INDEX: "an index to drop",
    OptimizationLog.Kind.INVALID_INDEX: "an invalid index to rebuild or drop",
    OptimizationLog.Kind.FK_INDEX: "a foreign key without an index",
}


def _not_measured(log: OptimizationLog) -> str:
    if log.kind in UNTIMED_KINDS:
        return (
            "Not measured: verification times new indexes for slow queries, and this is "
            f"{UNTIMED_KINDS[log.kind]}: estimate only."
        )
    error = (log.details or {}).get("verification_error")
    if error:
        return f"Not measured: {error.rstrip('.')}. Estimate only."
    return "Not measured (verification was off): estimate only."


def rationale_from_facts(
    *, log: OptimizationLog, similar: list[SimilarOptimization], workload_share: float | None
) -> str:
    """A plain account of what the advisor and the verifier found."""
    lines = [log.recommendation.strip() or log.ddl]
    before, after = log.estimated_cost_before, log.estimated_cost_after
    if before and after is not None and before > 0:
        lines.append(
            f"The planner's estimated cost of the query falls from {before:,.1f} to "
            f"{after:,.1f} ({_pct(1 - after / before)} less)."
        )
    if log.measured_ms_before is not None and log.measured_ms_after is not None:
        ratio = (
            f", {log.measured_ms_before / log.measured_ms_after:.1f}x faster"
            if log.measured_ms_after > 0
            else ""
        )
        lines.append(
            f"Measured with EXPLAIN ANALYZE: {log.measured_ms_before:,.2f} ms before, "
            f"{log.measured_ms_after:,.2f} ms after{ratio}."
        )
    else:
        lines.append(_not_measured(log))
    if workload_share is not None:
        lines.append(f"The query took {_pct(workload_share)} of the workload's time.")
    if log.index_size_bytes:
        lines.append(f"Estimated index size: {size_text(log.index_size_bytes)}.")
    if similar:
        lines.append("Similar past optimizations:")
        lines.extend(_similar_lines(similar))
    return "\n".join(lines)


def rationale_prompt(
    *, log: OptimizationLog, similar: list[SimilarOptimization], facts: str
) -> str:
    plans = {
        "plan_before": json.dumps(log.plan_before)[:PLAN_PROMPT_CHARS] if log.plan_before else "",
        "plan_after": json.dumps(log.plan_after)[:PLAN_PROMPT_CHARS] if log.plan_after else "",
    }
    parts = [
        f"Query (normalized, from pg_stat_statements):\n{log.query_text}",
        f"Recommendation (fixed):\n{log.ddl or log.recommendation}",
        f"Facts:\n{facts}",
    ]
    parts += [f"{name} (EXPLAIN JSON):\n{text}" for name, text in plans.items() if text]
    if not similar:
        parts.append("No similar past optimizations.")
    return "\n\n".join(parts)


def rationale_write(
    *,
    log: OptimizationLog,
    similar: list[SimilarOptimization],
    workload_share: float | None = None,
    use_llm: bool = True,
) -> Rationale:
    """The rationale stored in OptimizationLog.explanation: LLM words (if any) + the facts."""
    facts = rationale_from_facts(log=log, similar=similar, workload_share=workload_share)
    if not use_llm:
        return Rationale(text=facts, source="facts", note="LLM not asked")
    from llmclient import LLMError, llm_client

    try:
        client = llm_client()
    except LLMError as exc:  # configured but unusable (a missing key): say so, carry on
        return Rationale(text=facts, source="facts", note=f"LLM not usable: {exc}")
    if client is None:
        return Rationale(text=facts, source="facts", note="no LLM configured")
    prompt = rationale_prompt(log=log, similar=similar, facts=facts)
    try:
        answer = client.complete(prompt, system=SYSTEM_PROMPT).strip()
    except LLMError as exc:
        logger.warning("LLM rationale failed, using the facts: %s", exc)
        return Rationale(text=facts, source="facts", note=f"LLM failed: {exc}")
    if not answer:
        return Rationale(text=facts, source="facts", note="LLM returned nothing")
    return Rationale(text=f"{answer}\n\nFacts:\n{facts}", source="llm")
