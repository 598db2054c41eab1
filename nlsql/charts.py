"""An answer as a picture, chosen by rules from its columns' types, never by generated code.

A time column and numbers: a line chart over time. A category and numbers: a bar chart.
Anything else stays a table. The types are read from the values as the runner returns them
(nlsql.jsonsafe: int and float stay numbers, dates and timestamps are ISO 8601 text, numeric
is exact decimal text), so the rules see what PostgreSQL typed the column as.
"""

import datetime
import decimal
import math
from enum import StrEnum

from presentation.charts import ChartSpec, Series

# A bar chart of more categories than this is unreadable at 1280 px: the table says it better.
MAX_BARS = 40
# At most this many number columns become series (one colour each).
MAX_SERIES = 4


class ColumnType(StrEnum):
    TIME = "time"
    NUMBER = "number"
    CATEGORY = "category"
    OTHER = "other"  # empty, mixed, or structured (json, arrays): no chart


def column_type(values: list) -> ColumnType:
    """What a column's non-null values all are."""
    present = [v for v in values if v is not None]
    if not present:
        return ColumnType.OTHER
    if all(_is_number(v) for v in present):
        return ColumnType.NUMBER
    if all(isinstance(v, str) and _is_time(v) for v in present):
        return ColumnType.TIME
    if all(isinstance(v, str | bool) for v in present):
        return ColumnType.CATEGORY
    return ColumnType.OTHER


def answer_chart(columns: list[str], rows: list[list]) -> ChartSpec | None:
    """The chart an answer's columns call for, or None when a table is the better picture."""
    if len(rows) < 2 or len(columns) < 2:
        return None
    types = [column_type([row[i] for row in rows]) for i in range(len(columns))]
    numbers = [i for i, kind in enumerate(types) if kind == ColumnType.NUMBER][:MAX_SERIES]
    times = [i for i, kind in enumerate(types) if kind == ColumnType.TIME]
    categories = [i for i, kind in enumerate(types) if kind == ColumnType.CATEGORY]
    if len(times) == 1 and numbers:
        x = times[0]
        ordered = sorted((row for row in rows if row[x] is not None), key=lambda row: row[x])
        return _spec("line", columns, ordered, x, numbers)
    if not times and len(categories) == 1 and numbers and len(rows) <= MAX_BARS:
        return _spec("bar", columns, rows, categories[0], numbers)
    return None


def _spec(kind: str, columns: list[str], rows: list[list], x: int, ys: list[int]) -> ChartSpec:
    return ChartSpec(
        kind=kind,
        labels=[_label(row[x]) for row in rows],
        series=[Series(label=columns[y], data=[_number(row[y]) for row in rows]) for y in ys],
        x_title=columns[x],
        y_title=columns[ys[0]] if len(ys) == 1 else "",
    )


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):  # exact numeric as text (json_safe's Decimal)
        try:
            return decimal.Decimal(value).is_finite()
        except decimal.InvalidOperation:
            return False
    return False


def _is_time(value: str) -> bool:
    if len(value) < 10 or value[4] != "-":  # ISO 8601 dates start YYYY-
        return False
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _number(value) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _label(value) -> str:
    if isinstance(value, str) and _is_time(value) and value.endswith("T00:00:00+00:00"):
        return value[:10]  # a date_trunc('month', ...) point reads as its day
    return "NULL" if value is None else str(value)
