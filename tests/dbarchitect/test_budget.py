"""The index budget as a DBA writes it."""

import pytest

from dbarchitect.budget import BudgetError, IndexBudget, budget_parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", IndexBudget(limit_bytes=500 * 1024**2)),
        ("1.5 GB", IndexBudget(limit_bytes=int(1.5 * 1024**3))),
        ("800kB", IndexBudget(limit_bytes=800 * 1024)),
        ("30MiB", IndexBudget(limit_bytes=30 * 1024**2)),
        ("4096", IndexBudget(limit_bytes=4096)),
        ("0", IndexBudget(limit_bytes=0)),
        ("10%", IndexBudget(share=0.1)),
        (" 2.5 % ", IndexBudget(share=0.025)),
        ("none", IndexBudget()),
        ("Unlimited", IndexBudget()),
    ],
)
def test_budgets_parse(text, expected):
    assert budget_parse(text) == expected


NOT_BUDGETS = ["", "MB", "-5MB", "5 parsecs", "1e3MB", "10%%", "5000%", "\u00bdGB", "\u0665MB"]


@pytest.mark.parametrize("text", NOT_BUDGETS)
def test_a_budget_that_is_not_a_size_says_what_is_accepted(text):
    with pytest.raises(BudgetError, match=r"500MB|1000%"):
        budget_parse(text)


def test_a_share_is_of_the_audited_tables_and_bytes_are_bytes():
    assert budget_parse("10%").bytes_for(1_000_000) == 100_000
    assert budget_parse("1MB").bytes_for(1) == 1024**2
    assert budget_parse("none").bytes_for(10**12) is None


def test_a_budget_reads_back_for_the_report():
    assert str(budget_parse("10%")) == "10% of the audited tables"
    assert str(budget_parse("30MB")) == "30.0 MiB"
    assert str(budget_parse("none")) == "no limit"
