"""Rewrite hints: what to change in a query that no index can serve as it is written.

One function per kind of hint; each says its message, or None where it does not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from psycopg import sql

from pgaccess.catalog import TableInfo

from .. import analysis as an
from .. import candidates as cd
from .advice import HintKind, RewriteHint
from .costing import CostedQuery
from .facts import TargetFacts

PredicateHint = Callable[[TargetFacts, an.Predicate, TableInfo, str], "str | None"]


def rewrite_hints(facts: TargetFacts, queries: Iterable[CostedQuery]) -> list[RewriteHint]:
    """Every hint for every scope and filter of the costed queries, each once."""
    hints = [
        RewriteHint(costed.query.queryid, costed.query.query, kind, message)
        for costed in queries
        for kind, message in _query_hints(facts, costed.analysis)
    ]
    return list({(h.queryid, h.kind, h.message): h for h in hints}.values())


def _query_hints(facts: TargetFacts, analysis: an.QueryAnalysis) -> Iterator[tuple[HintKind, str]]:
    for scope in analysis.scopes:
        offset = offset_pagination(scope)
        if offset is not None:
            yield HintKind.OFFSET_PAGINATION, offset
        for predicate in scope.predicates:
            found = facts.resolve(predicate.column)
            if found is None:
                continue
            for kind, make in PREDICATE_HINTS:
                message = make(facts, predicate, *found)
                if message is not None:
                    yield kind, message


def offset_pagination(scope: an.Scope) -> str | None:
    if scope.offset == "param" or (isinstance(scope.offset, int) and scope.offset > 0):
        return (
            "OFFSET reads and throws away every skipped row; page with a keyset "
            "(WHERE (sort_col, id) > (last_seen...) ORDER BY sort_col, id LIMIT n)."
        )
    return None


def function_on_column(
    facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str
) -> str | None:
    if predicate.expression is None or not _has_plain_index(info, column):
        return None
    return (
        f"{predicate.expression} hides the index on {info.name}.{column}: compare the "
        "column as stored, or index the expression."
    )


def _searched(facts: TargetFacts, predicate: an.Predicate) -> str | None:
    """The to_tsvector expression a full-text filter was costed as, if it is one."""
    if predicate.kind != an.FilterKind.PARAM_EXPRESSION or predicate.operator != "@@":
        return None
    return an.text_search_expression(predicate.expression, facts.text_search_config)


def text_search_config(
    facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str
) -> str | None:
    searched = _searched(facts, predicate)
    if not searched:
        return None
    return (
        f"{predicate.expression} on {info.name}.{column}: pg_stat_statements hid the text "
        "search configuration; its GIN index was costed with this database's "
        f"default_text_search_config ({facts.text_search_config}), as {searched}: if the "
        "application passes another one, write that one in the index, or the query will "
        "not use it."
    )


def hidden_constant(
    facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str
) -> str | None:
    if predicate.kind != an.FilterKind.PARAM_EXPRESSION or _searched(facts, predicate):
        return None
    method = " USING gin" if predicate.operator in an.GIN_OPERATORS else ""
    return (
        f"{predicate.expression} on {info.name}.{column}: pg_stat_statements replaced the "
        "constants in it by parameters, so no expression index could be costed for it; if "
        "the application always passes the same constants there, index the expression "
        f"written with them (CREATE INDEX ON {_table(info)}{method} ((<the expression>)))"
    )


def columns_expression(
    facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str
) -> str | None:
    if predicate.kind != an.FilterKind.COLUMNS_EXPRESSION:
        return None
    return (
        f"{predicate.expression} {predicate.operator} ... on {info.name}: an expression "
        "over several columns, which no index on a column serves; an index on the "
        f"expression can (CREATE INDEX ON {_table(info)} (({predicate.expression}))). Not "
        "costed: the planner has statistics for an expression only once an index on it "
        "exists and the table is analyzed."
    )


def not_distinct(
    facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str
) -> str | None:
    if predicate.kind != an.FilterKind.NOT_DISTINCT:
        return None
    return (
        f"IS NOT DISTINCT FROM on {info.name}.{column} has no index operator: write "
        f"{column} = <value> (with OR {column} IS NULL only where the value may be NULL) "
        "so an index can serve it."
    )


def ilike(facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str) -> str | None:
    if predicate.kind != an.FilterKind.ILIKE:
        return None
    return (
        f"ILIKE on {info.name}.{column} cannot use a btree index: use lower({column}) LIKE "
        f"lower($1) with an index on lower({column}) text_pattern_ops, or a pg_trgm GIN "
        f"index.{_trigram_note(facts)}"
    )


def substring(
    facts: TargetFacts, predicate: an.Predicate, info: TableInfo, column: str
) -> str | None:
    if predicate.kind != an.FilterKind.SUBSTRING or facts.trigram:
        return None
    like = "ILIKE" if predicate.operator == "~~*" else "LIKE"
    return (
        f"{like} with a leading wildcard on {info.name}.{column}: no btree index can serve "
        f"it, only a pg_trgm GIN index.{_trigram_note(facts)}"
    )


# In the order a query's hints are listed.
PREDICATE_HINTS: tuple[tuple[HintKind, PredicateHint], ...] = (
    (HintKind.FUNCTION_ON_COLUMN, function_on_column),
    (HintKind.TEXT_SEARCH_CONFIG, text_search_config),
    (HintKind.HIDDEN_CONSTANT, hidden_constant),
    (HintKind.COLUMNS_EXPRESSION, columns_expression),
    (HintKind.NOT_DISTINCT, not_distinct),
    (HintKind.ILIKE, ilike),
    (HintKind.SUBSTRING, substring),
)


def _trigram_note(facts: TargetFacts) -> str:
    """Why no pg_trgm index was costed, when that is the reason."""
    if facts.trigram:
        return ""
    return (
        " The extension pg_trgm is not installed on this database, so no such index was "
        "costed: CREATE EXTENSION pg_trgm there, then CREATE INDEX ... USING gin "
        "(<column> gin_trgm_ops)."
    )


def _has_plain_index(info: TableInfo, column: str) -> bool:
    return any(
        index.valid and index.keys and cd.existing_key(index.keys[0]) == column
        for index in info.indexes
    )


def _table(info: TableInfo) -> str:
    return sql.Identifier(info.schema, info.name).as_string(None)
