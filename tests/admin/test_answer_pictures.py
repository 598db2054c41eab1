"""Ask the database: an answer drawn by rules from its column types, and downloaded as CSV."""

import csv
import io

import pytest
from django.urls import reverse

from nlsql.answer_csv import answer_csv
from nlsql.charts import ColumnType, answer_chart, column_type
from nlsql.models import QuestionLog

MONTHS = [
    ["2026-03-01T00:00:00+00:00", 1639, "12.5"],
    ["2026-01-01T00:00:00+00:00", 1724, "10.0"],
    ["2026-02-01T00:00:00+00:00", 1531, None],
]


def test_a_time_column_and_numbers_draw_a_line_over_time_in_time_order():
    chart = answer_chart(["month", "signups", "avg_age"], MONTHS)
    assert chart.kind == "line"
    assert chart.labels == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert [s.label for s in chart.series] == ["signups", "avg_age"]
    assert chart.series[0].data == [1724.0, 1531.0, 1639.0]
    assert chart.series[1].data == [10.0, None, 12.5]  # numeric as exact text, NULL a gap
    assert chart.x_title == "month"


def test_a_category_and_a_number_draw_bars():
    rows = [["login", 4000], ["page_view", 12000], [None, 3]]
    chart = answer_chart(["event_type", "events"], rows)
    assert chart.kind == "bar"
    assert chart.labels == ["login", "page_view", "NULL"]
    assert chart.y_title == "events"


@pytest.mark.parametrize(
    ("columns", "rows"),
    [
        (["n"], [[1], [2]]),  # one column
        (["day", "events"], [["2026-01-01", 5]]),  # one row
        (["email", "name"], [["a@x", "A"], ["b@x", "B"]]),  # no number
        (["a", "b", "n"], [["x", "y", 1], ["z", "w", 2]]),  # two categories: which one?
        (["payload", "n"], [[{"k": 1}, 1], [{"k": 2}, 2]]),  # structured values
        (["event", "n"], [[f"e{i}", i] for i in range(41)]),  # too many bars to read
    ],
)
def test_anything_else_stays_a_table(columns, rows):
    assert answer_chart(columns, rows) is None


def test_column_types_come_from_the_values_as_postgresql_typed_them():
    assert column_type([1, 2.5, None]) == ColumnType.NUMBER
    assert column_type(["12.50", "3"]) == ColumnType.NUMBER  # numeric, exact as text
    assert column_type(["2026-01-01", "2026-01-02T10:00:00+00:00"]) == ColumnType.TIME
    assert column_type(["2026", "login"]) == ColumnType.CATEGORY
    assert column_type([True, False]) == ColumnType.CATEGORY  # a boolean groups, not measures
    assert column_type([1, "login"]) == ColumnType.OTHER  # mixed
    assert column_type([None, None]) == ColumnType.OTHER


def test_csv_defuses_cells_a_spreadsheet_would_run_as_formulas():
    text = answer_csv(
        ["=cmd", "value"],
        [
            ['=HYPERLINK("http://x")', -5],
            ["+1", 2.5],
            ["-2+3", None],
            ["@SUM(A1)", True],
            ["plain, with comma", {"k": "=v"}],
        ],
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["'=cmd", "value"]
    assert rows[1] == ['\'=HYPERLINK("http://x")', "-5"]  # a negative number stays a number
    assert rows[2] == ["'+1", "2.5"]
    assert rows[3] == ["'-2+3", ""]
    assert rows[4] == ["'@SUM(A1)", "true"]
    assert rows[5] == ["plain, with comma", '{"k": "=v"}']


@pytest.mark.django_db
def test_the_ask_page_draws_a_logged_time_series_and_offers_its_csv(staff_client):
    log = QuestionLog.objects.create(
        question="How many users signed up each month?",
        target="default",
        status=QuestionLog.Status.OK,
        sql="SELECT date_trunc('month', created_at) AS month, count(*) AS signups "
        "FROM generate_series(timestamptz '2026-01-15', '2026-04-15', interval '1 month') "
        "AS created_at GROUP BY 1 ORDER BY 1",
    )
    response = staff_client.get(reverse("admin:nlsql_ask"), {"log": log.pk})
    html = response.content.decode()

    chart = response.context["chart"]
    assert chart["kind"] == "line" and len(chart["labels"]) == 4
    assert 'data-dba-chart="answer-chart-data"' in html and "vendor/chart.umd.js" in html
    assert "planner&#x27;s estimates" in html or "planner's estimates" in html

    download = staff_client.get(reverse("admin:nlsql_answer_csv", args=[log.pk]))
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="answer-{log.pk}.csv"' in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0] == ["month", "signups"] and len(rows) == 5


@pytest.mark.django_db
def test_a_csv_of_an_answer_without_rows_says_why(staff_client):
    log = QuestionLog.objects.create(
        question="drop it", target="default", status=QuestionLog.Status.REFUSED, sql=""
    )
    response = staff_client.get(reverse("admin:nlsql_answer_csv", args=[log.pk]), follow=True)
    assert response.redirect_chain[-1][0].endswith(f"?log={log.pk}")
    assert "no rows to download" in response.content.decode()
