"""Reads of the retrieval memory: the context a question's prompt carries.

Nearest items by cosine distance of the question's embedding (HNSW), per kind, then cut
to a token budget so a schema of hundreds of tables sends only the relevant ones.
"""

from dataclasses import dataclass, field

from django.conf import settings
from pgvector.django import CosineDistance

from optimizations.vector_search import nearest_rows

from .models import TrainingItem
from .vectors import embed_text

# A rough count of tokens for budgeting (English text and SQL average ~4 characters).
CHARS_PER_TOKEN = 4
# Shares of the budget: the schema matters most, then examples, then notes.
BUDGET_SHARES = {"ddl": 0.6, "question_sql": 0.25, "documentation": 0.15}


@dataclass(frozen=True)
class Retrieved:
    item: TrainingItem
    similarity: float


@dataclass
class RetrievedContext:
    ddl: list[Retrieved] = field(default_factory=list)
    pairs: list[Retrieved] = field(default_factory=list)
    documentation: list[Retrieved] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.ddl or self.pairs or self.documentation)


def question_embedding(question: str) -> list[float]:
    return embed_text(question)


def approx_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def training_list_nearest(
    *, vector: list[float], target: str, kind: str, limit: int
) -> list[Retrieved]:
    """The `limit` items of one kind and target nearest to a vector, closest first."""
    queryset = (
        TrainingItem.objects.filter(target=target, kind=kind)
        .exclude(embedding=None)
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")[:limit]
    )
    rows = nearest_rows(queryset, limit=limit)
    return [Retrieved(item=row, similarity=1.0 - row.distance) for row in rows]


def context_retrieve(
    *, question: str, target: str, budget_tokens: int | None = None, vector=None
) -> RetrievedContext:
    """The nearest DDL, question-SQL pairs and notes that fit the token budget."""
    budget = settings.NLSQL_CONTEXT_TOKEN_BUDGET if budget_tokens is None else budget_tokens
    limit = settings.NLSQL_RETRIEVE_LIMIT
    vector = question_embedding(question) if vector is None else vector
    context = RetrievedContext()
    for kind, attribute in (
        (TrainingItem.Kind.DDL, "ddl"),
        (TrainingItem.Kind.QUESTION_SQL, "pairs"),
        (TrainingItem.Kind.DOCUMENTATION, "documentation"),
    ):
        nearest = training_list_nearest(vector=vector, target=target, kind=kind, limit=limit)
        setattr(context, attribute, _fit(nearest, int(budget * BUDGET_SHARES[kind])))
    return context


def _fit(items: list[Retrieved], budget: int) -> list[Retrieved]:
    """Closest first until the budget is spent; an item that does not fit is skipped."""
    kept, spent = [], 0
    for retrieved in items:
        cost = approx_tokens(_item_text(retrieved.item))
        if spent + cost <= budget:
            kept.append(retrieved)
            spent += cost
    return kept


def _item_text(item: TrainingItem) -> str:
    if item.kind == TrainingItem.Kind.QUESTION_SQL:
        return f"{item.question}\n{item.sql}"
    return item.text
