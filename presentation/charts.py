"""Chart specifications the admin pages draw with the local Chart.js (static/dbarchitect/charts.js).

A spec is data (labels, series, axis titles), built here from stored numbers and passed to the
page through json_script; the page's one script draws any spec, and no code is generated.
"""

from dataclasses import asdict, dataclass, field

from .formatting import bytes_text

# The phases in the order an audit runs them (the stored JSON keeps no key order).
PHASE_ORDER = ("collect", "advise", "health", "verify", "record")


@dataclass(frozen=True)
class Series:
    label: str
    data: list[float | None]


@dataclass(frozen=True)
class ChartSpec:
    kind: str  # "bar" or "line" (Chart.js chart types)
    labels: list[str]
    series: list[Series]
    x_title: str = ""
    y_title: str = ""
    horizontal: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def phase_chart(phase_seconds: dict | None) -> ChartSpec | None:
    """An audit's phase times (seconds) as a horizontal bar per phase, in the order they ran."""
    given = {
        str(name): float(seconds)
        for name, seconds in (phase_seconds or {}).items()
        if isinstance(seconds, int | float)
    }
    order = {name: i for i, name in enumerate(PHASE_ORDER)}
    phases = dict(sorted(given.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))
    if not phases:
        return None
    return ChartSpec(
        kind="bar",
        labels=list(phases),
        series=[Series(label="seconds", data=[round(s, 3) for s in phases.values()])],
        x_title="seconds",
        horizontal=True,
    )


def frontier_chart(frontier: object) -> ChartSpec | None:
    """The budget frontier ({budget_bytes, indexes, relative_cost} per point) as a line:
    the workload's relative cost for each index-size budget, the index count per point."""
    if not isinstance(frontier, list):
        return None
    points = [
        p
        for p in frontier
        if isinstance(p, dict)
        and isinstance(p.get("budget_bytes"), int | float)
        and isinstance(p.get("relative_cost"), int | float)
    ]
    if not points:
        return None
    points.sort(key=lambda p: p["budget_bytes"])
    return ChartSpec(
        kind="line",
        labels=[bytes_text(int(p["budget_bytes"])) for p in points],
        series=[Series(label="relative workload cost", data=[p["relative_cost"] for p in points])],
        x_title="index size budget",
        y_title="relative cost (1 = no new index)",
        extra={"indexes": [_index_count(p.get("indexes")) for p in points]},
    )


def _index_count(indexes: object) -> int:
    if isinstance(indexes, list):
        return len(indexes)
    return int(indexes) if isinstance(indexes, int | float) else 0
