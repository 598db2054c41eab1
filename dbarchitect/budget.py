"""The storage budget an audit's new indexes must fit in: bytes, or a share of the tables.

Written as a DBA writes it (`500MB`, `2 GB`, `10%`); units are PostgreSQL's (kB, MB, GB,
TB, powers of 1024, as in postgresql.conf), and the IEC spellings (KiB, MiB ...) too.
"""

import math
import re
from dataclasses import dataclass

UNITS = {
    "": 1,
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
    "tb": 1024**4,
    "tib": 1024**4,
}
BUDGET = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>%|[a-zA-Z]*)\s*", re.ASCII)
UNLIMITED = ("none", "unlimited")


class BudgetError(ValueError):
    """The budget's text is not a size or a share; the message says what is accepted."""


@dataclass(frozen=True)
class IndexBudget:
    """At most `limit_bytes`, or at most `share` of the audited tables' size; neither set:
    no limit."""

    limit_bytes: int | None = None
    share: float | None = None

    def bytes_for(self, tables_bytes: int) -> int | None:
        """The budget in bytes for tables of `tables_bytes`; None when there is no limit."""
        if self.share is not None:
            return math.floor(self.share * tables_bytes)
        return self.limit_bytes

    def __str__(self) -> str:
        if self.share is not None:
            return f"{self.share * 100:g}% of the audited tables"
        if self.limit_bytes is not None:
            return f"{self.limit_bytes / 1024**2:,.1f} MiB"
        return "no limit"


def budget_parse(text: str) -> IndexBudget:
    """`500MB`, `1.5 GB`, `10%`, `0` or `none` as an IndexBudget; BudgetError otherwise."""
    if text.strip().lower() in UNLIMITED:
        return IndexBudget()
    match = BUDGET.fullmatch(text)
    unit = match["unit"].lower() if match else ""
    if match is None or (unit != "%" and unit not in UNITS):
        raise BudgetError(
            f"index budget {text!r} is not a size or a share: write bytes with a unit "
            "(500MB, 2GB, 800kB), a share of the audited tables' size (10%), or none"
        )
    number = float(match["number"])
    if unit == "%":
        if number > 1000:
            raise BudgetError(f"index budget {text!r}: a share above 1000% is not a budget")
        return IndexBudget(share=number / 100)
    return IndexBudget(limit_bytes=math.floor(number * UNITS[unit]))
