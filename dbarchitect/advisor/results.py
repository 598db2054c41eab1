"""The recommendations, written out: a name, the DDL that builds it, what it saves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pgaccess.ddl import key_sql

from .. import candidates as cd
from ..candidates import Candidate
from . import sizes
from .advice import IndexRecommendation
from .costing import CostedQuery
from .facts import TargetFacts
from .options import BTREE_METHODS
from .selection import Credit


def recommendations_build(
    credits: Sequence[Credit], facts: TargetFacts, costed: Mapping[int, CostedQuery]
) -> list[IndexRecommendation]:
    """One recommendation per credited index, the biggest saving first."""
    schemas = {facts.by_oid[c.candidate.table_oid].schema for c in credits}
    names_taken = set().union(*(facts.relation_names.get(s, ()) for s in schemas))
    recommendations = [_recommendation(credit, facts, costed, names_taken) for credit in credits]
    recommendations.sort(key=lambda r: r.cost_before - r.cost_after, reverse=True)
    return recommendations


def _recommendation(
    credit: Credit, facts: TargetFacts, costed: Mapping[int, CostedQuery], names_taken: set[str]
) -> IndexRecommendation:
    candidate, per_query = credit.candidate, credit.per_query
    info = facts.by_oid[candidate.table_oid]
    identity = cd.fingerprint(info, candidate)
    name = cd.index_name(info, candidate, identity, names_taken)
    names_taken.add(name)
    create = cd.index_statement(info, candidate, name=name).as_string(None)
    # A partitioned table's index can only be built in one go (it blocks writes while it
    # builds), or partition by partition then attached: the DDL says the one that runs.
    partitioned = info.kind == "p"
    how = "IF NOT EXISTS " if partitioned else "CONCURRENTLY IF NOT EXISTS "
    statement = create.replace("CREATE INDEX ", f"CREATE INDEX {how}", 1)
    calls = {qid: costed[qid].calls for qid in per_query}
    return IndexRecommendation(
        schema=info.schema,
        table=info.name,
        name=name,
        columns=[key_sql(k).as_string(None) for k in candidate.keys],
        method=candidate.method,
        where=candidate.where,
        ddl=statement,
        fingerprint=identity,
        queryids=sorted(per_query, key=lambda q: -calls[q]),
        cost_before=sum(calls[q] * before for q, (before, _a) in per_query.items()),
        cost_after=sum(calls[q] * after for q, (_b, after) in per_query.items()),
        per_query=dict(per_query),
        size_bytes=int(credit.size_bytes),
        built_size_bytes=sizes.built_bytes(facts, candidate),
        needs_real_build=candidate.method not in BTREE_METHODS,
        plan_before=costed[credit.main].base.plan,
        plan_after=credit.plan_after,
        statements={q: costed[q].form.text for q in per_query if costed[q].form.is_literal},
        partitioned=partitioned,
        assumed_text_search_config=(
            facts.text_search_config
            if any(k.expression and k.text.startswith("to_tsvector(") for k in candidate.keys)
            else None
        ),
    )


def index_ddl(facts: TargetFacts, candidate: Candidate) -> str:
    """CREATE INDEX ON schema.table ... without a name: how the frontier lists a set."""
    info = facts.by_oid[candidate.table_oid]
    return cd.index_statement(info, candidate).as_string(None)
