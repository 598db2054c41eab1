"""The SQL guard alone: every hostile input refused with the right reason; SELECTs pass."""

import pytest

from nlsql.guard import GuardPolicy, SqlRefused, sql_check
from tests.nlsql.hostile_corpus import CORPUS

VALID = [
    "SELECT 1",
    "select email from demo_user where email like 'a%' order by email limit 5",
    "SELECT u.email, count(*) FROM demo_user u JOIN demo_behavior_log b ON b.user_id = u.id "
    "GROUP BY u.email",
    "WITH c AS (SELECT user_id, count(*) AS n FROM demo_behavior_log GROUP BY user_id) "
    "SELECT avg(n) FROM c",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
    "SELECT sum(n) FROM r",
    "SELECT event_type, rank() OVER (ORDER BY count(*) DESC) FROM demo_behavior_log "
    "GROUP BY event_type",
    "SELECT email FROM demo_user UNION SELECT event_type FROM demo_behavior_log EXCEPT SELECT 'x'",
    "SELECT name->>'en', jsonb_typeof(name) FROM demo_user",
    "SELECT date_trunc('day', \"timestamp\"), count(*) FROM demo_behavior_log GROUP BY 1",
    "SELECT pg_catalog.count(*) FROM demo_user",
    "SELECT extract(year FROM created_at) FROM demo_user",
    "SELECT created_at AT TIME ZONE 'UTC' FROM demo_user",
    "SELECT relname FROM pg_catalog.pg_class WHERE relkind = 'r'",
    "SELECT table_name FROM information_schema.tables",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT * FROM demo_user TABLESAMPLE bernoulli(50)",
    "SELECT x FROM generate_series(1, 3) AS x",
    "SELECT 1;",
]


@pytest.mark.parametrize(("sql", "fragment"), CORPUS, ids=[f"{i:03d}" for i in range(len(CORPUS))])
def test_guard_refuses_hostile_or_broken_sql_with_a_clear_reason(sql, fragment):
    with pytest.raises(SqlRefused) as refused:
        sql_check(sql)
    reason = refused.value.reason
    assert fragment.lower() in reason.lower(), reason
    assert reason.endswith(".") or ":" in reason  # a sentence, not a bare code


def test_corpus_has_at_least_150_distinct_inputs():
    assert len({sql for sql, _ in CORPUS}) >= 150


@pytest.mark.parametrize("sql", VALID)
def test_guard_allows_read_only_selects(sql):
    checked = sql_check(sql)
    assert checked.sql  # re-printed from the parse tree


def test_guard_reprints_what_it_checked_and_names_the_tables():
    checked = sql_check(
        "select u.email from demo_user u join demo_behavior_log b on b.user_id = u.id"
    )
    assert checked.sql == (
        "SELECT u.email FROM demo_user AS u INNER JOIN demo_behavior_log AS b ON b.user_id = u.id"
    )
    assert checked.tables == ("demo_behavior_log", "demo_user")


def test_denied_tables_and_allowed_schemas_follow_the_policy():
    policy = GuardPolicy(
        denied_tables=frozenset({"reporting.salaries", "demo_user"}),
        allowed_schemas=frozenset({"public", "reporting"}),
        max_length=1000,
    )
    assert sql_check("SELECT * FROM reporting.sales", policy=policy).tables == ("reporting.sales",)
    with pytest.raises(SqlRefused, match=r"reporting\.salaries is denied"):
        sql_check("SELECT * FROM reporting.salaries", policy=policy)
    with pytest.raises(SqlRefused, match="demo_user is denied"):
        sql_check("SELECT * FROM public.demo_user", policy=policy)
    # A qualified deny entry does not catch a same-named table in another schema.
    assert sql_check("SELECT * FROM public.salaries", policy=policy)
    with pytest.raises(SqlRefused, match="Schema audit is not allowed"):
        sql_check("SELECT * FROM audit.log", policy=policy)


def test_denied_tables_come_from_settings(settings):
    settings.NLSQL_DENIED_TABLES = ["demo_behavior_log"]
    with pytest.raises(SqlRefused, match="denied by NLSQL_DENIED_TABLES"):
        sql_check("SELECT count(*) FROM demo_behavior_log")
    assert sql_check("SELECT * FROM auth_user").tables == ("auth_user",)


def test_non_text_sql_is_refused():
    with pytest.raises(SqlRefused, match="must be text"):
        sql_check(42)
