"""An answer's rows as CSV, safe to open in a spreadsheet.

A text cell starting with = + - @ (or a tab or carriage return) is what a spreadsheet runs as
a formula (CSV injection); such cells get a leading apostrophe, which shows the text as typed.
Numbers are written as they are (a negative number is not a formula).
"""

import csv
import io
import json

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str | int | float:
    """One value as a CSV cell: NULL empty, structures as JSON, formula-like text defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def answer_csv(columns: list[str], rows: list[list]) -> str:
    """The header (column names, defused too) and every row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(name) for name in columns])
    writer.writerows([csv_cell(value) for value in row] for row in rows)
    return out.getvalue()
