"""From a question to checked SQL (LLM or trained pair), and from SQL to an explanation."""

from dataclasses import dataclass

from django.conf import settings

from llmclient import LLMClient, LLMError, llm_client
from pgaccess.explain import plan_nodes
from pgaccess.targets import DEFAULT_TARGET

from .guard import CheckedSql, sql_check
from .models import TrainingItem
from .prompts import (
    EXPLAIN_SYSTEM,
    SQL_SYSTEM,
    explain_prompt,
    extract_sql,
    retry_prompt,
    sql_prompt,
)
from .retrieval import context_retrieve, question_embedding, training_list_nearest
from .runner import query_plan


class NoAnswer(Exception):
    """No SQL could be produced (no LLM and no close trained question, or an LLM error)."""


@dataclass
class Generated:
    """SQL for a question: from the LLM (with the prompt it saw) or from a trained pair."""

    sql: str
    source: str  # QuestionLog.Source
    note: str = ""
    prompt: str = ""
    client: LLMClient | None = None


def generate_sql(question: str, target: str = DEFAULT_TARGET) -> Generated:
    """SQL for a question, not yet checked; raises NoAnswer with a clear message."""
    try:
        client = llm_client()
    except LLMError as exc:
        raise NoAnswer(str(exc)) from None
    vector = question_embedding(question)
    if client is None:
        return _from_trained_pair(question=question, target=target, vector=vector)
    context = context_retrieve(question=question, target=target, vector=vector)
    prompt = sql_prompt(question=question, context=context)
    try:
        answer = client.complete(prompt, system=SQL_SYSTEM)
    except LLMError as exc:
        raise NoAnswer(str(exc)) from None
    return Generated(sql=extract_sql(answer), source="llm", prompt=prompt, client=client)


def regenerate_sql(generated: Generated, *, problem: str) -> Generated:
    """Give the LLM its failed SQL and the error, once; raises NoAnswer on an LLM error."""
    if generated.client is None:
        raise NoAnswer(problem)
    prompt = retry_prompt(prompt=generated.prompt, sql=generated.sql, problem=problem)
    try:
        answer = generated.client.complete(prompt, system=SQL_SYSTEM)
    except LLMError as exc:
        raise NoAnswer(str(exc)) from None
    return Generated(
        sql=extract_sql(answer),
        source="llm",
        note=f"Corrected once after: {problem}",
        prompt=prompt,
        client=generated.client,
    )


def _from_trained_pair(*, question: str, target: str, vector) -> Generated:
    threshold = settings.NLSQL_OFFLINE_MIN_SIMILARITY
    nearest = training_list_nearest(
        vector=vector, target=target, kind=TrainingItem.Kind.QUESTION_SQL, limit=1
    )
    if not nearest:
        raise NoAnswer(
            "No LLM is configured (LLM_PROVIDER) and no question-SQL pairs are trained for "
            f"target {target!r}; add pairs with `manage.py nlsql_train --file`."
        )
    best = nearest[0]
    if best.similarity < threshold:
        raise NoAnswer(
            "No LLM is configured (LLM_PROVIDER) and no trained question is close enough: "
            f"the nearest is {best.item.question!r} (similarity {best.similarity:.2f}, "
            f"needs {threshold:.2f})."
        )
    return Generated(
        sql=best.item.sql,
        source="trained",
        note=(
            f"No LLM is configured: answered with the SQL of the trained question "
            f"{best.item.question!r} (similarity {best.similarity:.2f})."
        ),
    )


@dataclass
class PlanSummary:
    tables: list[str]
    indexes: list[str]
    scans: list[str]
    estimated_rows: float
    total_cost: float

    def text(self) -> str:
        parts = []
        if self.scans:
            parts.append("Reads " + "; ".join(self.scans) + ".")
        else:
            parts.append("Reads no table.")
        if self.indexes:
            parts.append("Indexes used: " + ", ".join(self.indexes) + ".")
        else:
            parts.append("No index is used.")
        parts.append(
            f"Estimated {self.estimated_rows:,.0f} result rows at a total cost of "
            f"{self.total_cost:,.2f} (planner units)."
        )
        return " ".join(parts)


@dataclass
class Explanation:
    sql: str
    text: str
    source: str  # "llm" or "plan"
    summary: PlanSummary


def plan_summarize(plan: dict) -> PlanSummary:
    """Tables scanned (and how), indexes used, estimated rows and cost of a JSON plan."""
    tables, indexes, scans = [], [], []
    for node in plan_nodes(plan):
        relation = node.get("Relation Name")
        index = node.get("Index Name")
        if relation:
            if relation not in tables:
                tables.append(relation)
            how = node["Node Type"].lower() + (f" using {index}" if index else "")
            scans.append(f"{relation} ({how})")
        if index and index not in indexes:
            indexes.append(index)
    root = plan["Plan"]
    return PlanSummary(
        tables=tables,
        indexes=indexes,
        scans=scans,
        estimated_rows=float(root.get("Plan Rows", 0)),
        total_cost=float(root.get("Total Cost", 0)),
    )


def explain_query(sql: str, target: str = DEFAULT_TARGET) -> Explanation:
    """A plain explanation: the LLM's when configured, else a summary of the plan.

    Raises SqlRefused for SQL the guard refuses and QueryFailed when it cannot be planned.
    """
    checked: CheckedSql = sql_check(sql)
    summary = plan_summarize(query_plan(checked=checked, target=target))
    try:
        client = llm_client()
    except LLMError:
        client = None
    if client is not None:
        try:
            text = client.complete(
                explain_prompt(sql=checked.sql, plan_summary=summary.text()),
                system=EXPLAIN_SYSTEM,
            )
            return Explanation(sql=checked.sql, text=text.strip(), source="llm", summary=summary)
        except LLMError as exc:
            text = f"{summary.text()} (The LLM could not explain it: {exc})"
            return Explanation(sql=checked.sql, text=text, source="plan", summary=summary)
    return Explanation(sql=checked.sql, text=summary.text(), source="plan", summary=summary)
