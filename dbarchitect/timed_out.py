"""Timed-out statements as workload: what pg_stat_statements never recorded, audited too.

A statement cancelled by statement_timeout reaches only the server's log (server_log).
Each logged shape that timed out and has no pg_stat_statements entry becomes a QueryStat
the advisor costs beside the rest: a queryid derived from its fingerprint, one call per
timeout, each call lasting at least the timeout.
"""

from collections.abc import Iterable, Sequence
from dataclasses import replace

from pglast.parser import ParseError, fingerprint

from pgaccess.log_lines import LoggedQuery

from .collector import Collection, QueryStat, workload_exclusion

# pg_stat_statements' queryids are signed 64-bit; a fingerprint is 64 bits of hex.
_SIGN = 1 << 63


def synthetic_queryid(shape_fingerprint: str) -> int:
    """The fingerprint's 64 bits as a signed bigint: stable across audits, like a queryid."""
    value = int(shape_fingerprint, 16)
    return value - (1 << 64) if value >= _SIGN else value


def timed_out_stats(
    logged: Iterable[LoggedQuery],
    *,
    known: Iterable[str],
    timeout_ms: float,
    own_tables: Iterable[str] = (),
) -> list[QueryStat]:
    """The logged shapes that timed out and that none of the `known` statement texts
    (pg_stat_statements') has, as QueryStats: calls = timeouts, mean = `timeout_ms`."""
    seen = set()
    for text in known:
        try:
            seen.add(fingerprint(text))
        except ParseError:
            continue
    own = frozenset(name.lower() for name in own_tables)
    stats = []
    for query in logged:
        if query.timeouts < 1 or query.fingerprint in seen:
            continue
        reason, tables = workload_exclusion(query.query, own_tables=own)
        if reason:
            continue
        stats.append(
            QueryStat(
                queryid=synthetic_queryid(query.fingerprint),
                userid=0,
                query=query.query,
                calls=query.timeouts,
                total_time_ms=query.timeouts * timeout_ms,
                mean_time_ms=timeout_ms,
                rows=0,
                shared_blks_hit=0,
                shared_blks_read=0,
                tables=tables,
                timeouts=query.timeouts,
            )
        )
    return stats


def collection_with_timed_out(collection: Collection, timed_out: Sequence[QueryStat]) -> Collection:
    """`collection` with the timed-out statements among the analyzed ones, first: they are
    the slowest of all, whatever the thresholds say."""
    if not timed_out:
        return collection
    return replace(
        collection,
        stats=[*collection.stats, *timed_out],
        slow=[*timed_out, *collection.slow],
    )
