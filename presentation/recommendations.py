"""A recommendation's confidence and gains as the admin pages and the reports show them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfidenceComponent:
    name: str
    value: float | None
    weight: float | None
    score: float | None

    @property
    def weighted(self) -> float | None:
        """What this component adds to the total (weight x score)."""
        if self.weight is None or self.score is None:
            return None
        return self.weight * self.score


def confidence_components(breakdown: dict | None) -> list[ConfidenceComponent]:
    """The rows of a confidence breakdown ({"components": {name: {value, weight, score}}})."""
    components = (breakdown or {}).get("components") or {}
    if not isinstance(components, dict):
        return []
    rows = []
    for name, parts in components.items():
        parts = parts if isinstance(parts, dict) else {"value": parts}
        rows.append(
            ConfidenceComponent(
                name=str(name),
                value=number_or_none(parts.get("value")),
                weight=number_or_none(parts.get("weight")),
                score=number_or_none(parts.get("score")),
            )
        )
    # jsonb keeps no key order: heaviest weight first, then by name, the same on every page.
    return sorted(rows, key=lambda row: (-(row.weight or 0.0), row.name))


def percent_drop(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before <= 0:
        return None
    return round(100.0 * (before - after) / before, 1)


def number_or_none(value: object) -> float | None:
    """A JSON number as a float; anything else (a string, a bool, null) as None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
