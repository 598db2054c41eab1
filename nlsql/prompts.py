"""The prompts sent to the LLM and reading SQL back out of its answer."""

from pglast import parse_sql
from pglast.parser import ParseError

from .retrieval import RetrievedContext

SQL_SYSTEM = (
    "You are a senior PostgreSQL analyst. Answer a question about a database with exactly "
    "one read-only PostgreSQL SELECT statement (CTEs allowed) inside a ```sql fenced block. "
    "Use only the tables and columns in the schema you are given, qualify ambiguous "
    "columns, and never write INSERT, UPDATE, DELETE, DDL, SET or function calls that have "
    "side effects. No explanation outside the block."
)

EXPLAIN_SYSTEM = (
    "You explain PostgreSQL queries to people who are not database experts: in at most "
    "four plain sentences say what the query returns and how the database finds it "
    "(using the plan summary), without repeating the SQL."
)

SQL_FENCE_LANGUAGES = {"", "sql", "postgresql", "postgres", "pgsql", "psql"}
# An answer longer than this many lines is not searched for a bare statement.
MAX_SCANNED_LINES = 60


def sql_prompt(*, question: str, context: RetrievedContext) -> str:
    """The question with its retrieved schema, notes and worked examples."""
    parts = []
    if context.ddl:
        parts.append("Database schema (the tables relevant to the question):")
        parts.extend(retrieved.item.text for retrieved in context.ddl)
    if context.documentation:
        parts.append("\nDocumentation:")
        parts.extend(f"- {retrieved.item.text}" for retrieved in context.documentation)
    if context.pairs:
        parts.append("\nExamples of questions and their SQL:")
        for retrieved in context.pairs:
            parts.append(f"Question: {retrieved.item.question}\n```sql\n{retrieved.item.sql}\n```")
    if not parts:
        parts.append("(No schema has been trained for this database yet.)")
    parts.append(f"\nQuestion: {question}\nSQL:")
    return "\n".join(parts)


def retry_prompt(*, prompt: str, sql: str, problem: str) -> str:
    """The first prompt again, with the rejected answer and why, to correct it once."""
    return (
        f"{prompt}\n\nYour previous answer was:\n```sql\n{sql}\n```\n"
        f"It failed: {problem}\n"
        "Answer again with one corrected read-only SELECT in a ```sql block."
    )


def explain_prompt(*, sql: str, plan_summary: str) -> str:
    return f"Query:\n```sql\n{sql}\n```\n\nPlan summary:\n{plan_summary}\n\nExplain it."


def extract_sql(answer: str) -> str:
    """The SQL in an LLM answer: the first sql fenced block, else the statement in the text.

    Without a fence, the longest run of lines that the Postgres parser accepts wins (so
    "Here is the query:" before it or a sentence after it is dropped); when nothing parses
    the whole answer is returned and the guard reports the parse error.
    """
    fenced = _first_sql_block(answer)
    if fenced is not None:
        return fenced
    lines = answer.strip().splitlines()[:MAX_SCANNED_LINES]
    for start in range(len(lines)):
        for end in range(len(lines), start, -1):
            candidate = "\n".join(lines[start:end]).strip()
            if candidate and _parses(candidate):
                return candidate
    return answer.strip()


def _first_sql_block(answer: str) -> str | None:
    block: list[str] | None = None
    language = ""
    for line in answer.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            if block is None:
                block, language = [], stripped[3:].strip().lower()
                continue
            if language in SQL_FENCE_LANGUAGES and "\n".join(block).strip():
                return "\n".join(block).strip()
            block = None
            continue
        if block is not None:
            block.append(line)
    if block is not None and language in SQL_FENCE_LANGUAGES and "\n".join(block).strip():
        return "\n".join(block).strip()  # an unclosed fence: the rest of the answer
    return None


def _parses(text: str) -> bool:
    try:
        return bool(parse_sql(text))
    except ParseError:
        return False
