"""presentation.plan_tree: stored EXPLAIN JSON as nested, escaped HTML with the changes marked."""

from presentation.plan_tree import plan_tree_pair

BEFORE = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Plan Rows": 1,
            "Actual Rows": 1,
            "Actual Total Time": 153.74142516,
            "Plans": [
                {
                    "Node Type": "Seq Scan",
                    "Relation Name": "demo_behavior_log",
                    "Plan Rows": 12000,
                    "Actual Rows": 11873,
                    "Actual Loops": 1,
                    "Actual Total Time": 150.1,
                    "Filter": "(event_type = 'login'::text)",
                }
            ],
        }
    }
]
AFTER = [
    {
        "Plan": {
            "Node Type": "Aggregate",
            "Plan Rows": 1,
            "Actual Rows": 1,
            "Actual Total Time": 0.53,
            "Plans": [
                {
                    "Node Type": "Index Only Scan",
                    "Relation Name": "demo_behavior_log",
                    "Index Name": "demo_behavior_log_event_type_idx",
                    "Plan Rows": 12000,
                    "Actual Rows": 11873,
                    "Actual Loops": 3,
                    "Actual Total Time": 0.41,
                    "Index Cond": "(event_type = 'login'::text)",
                }
            ],
        }
    }
]


def test_plan_tree_nests_nodes_with_estimated_and_actual_rows_and_time():
    pair = plan_tree_pair(BEFORE, AFTER)
    before = str(pair.before)
    assert before.index("Aggregate") < before.index("<ul><li")  # the scan is nested under it
    assert "est. 12,000 rows · actual 11,873 rows" in before
    assert "154 ms" in before and "150 ms" in before  # not 153.74142516
    after = str(pair.after)
    assert "actual 11,873 rows x 3 loops" in after and "0.410 ms" in after
    assert 'using <span class="dba-plan-idx">demo_behavior_log_event_type_idx</span>' in after


def test_plan_tree_marks_only_the_nodes_one_plan_lacks():
    pair = plan_tree_pair(BEFORE, AFTER)
    assert pair.changed == 2
    assert str(pair.before).count('class="dba-plan-changed"') == 1  # the Seq Scan
    assert str(pair.after).count('class="dba-plan-changed"') == 1  # the Index Only Scan
    assert '<li class=""><div class="dba-plan-node"><strong>Aggregate' in str(pair.after)


def test_plan_tree_escapes_names_from_the_plan():
    hostile = [{"Plan": {"Node Type": "Seq Scan", "Relation Name": "<script>alert(1)</script>"}}]
    pair = plan_tree_pair(hostile, None)
    assert "<script>" not in str(pair.before)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in str(pair.before)
    assert "Not recorded." in str(pair.after)
    assert pair.changed == 0  # nothing to compare with


def test_plan_tree_reads_a_plan_stored_without_its_list():
    pair = plan_tree_pair(BEFORE[0], AFTER[0]["Plan"])
    assert "Seq Scan" in str(pair.before) and "Index Only Scan" in str(pair.after)
