"""The index advisor: analyze, look up, cost, generate candidates, choose, credit.

`orchestration.advise` is the whole run, top to bottom; `selection` is the choice itself,
pure over a cost oracle; `costing` is the only part that talks to the target meanwhile.
"""

from .advice import (
    Advice,
    AdvisorError,
    HintKind,
    IndexRecommendation,
    QueryLike,
    RewriteHint,
    SkippedQuery,
    SkipReason,
    WorkloadLike,
)
from .orchestration import advise
from .representatives import RepresentativeStatement, representative_statements

__all__ = [
    "Advice",
    "AdvisorError",
    "HintKind",
    "IndexRecommendation",
    "QueryLike",
    "RepresentativeStatement",
    "RewriteHint",
    "SkipReason",
    "SkippedQuery",
    "WorkloadLike",
    "advise",
    "representative_statements",
]
