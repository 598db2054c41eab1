import pytest
from django.db import connection

from demo.seeding import demo_seed

pytestmark = pytest.mark.django_db


def test_seed_leaves_fresh_planner_statistics():
    demo_seed(users=50, logs=2_000, seed=7)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class "
            "WHERE relname IN ('demo_user', 'demo_behavior_log') ORDER BY relname"
        )
        counts = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_stats "
            "WHERE tablename = 'demo_behavior_log' AND attname = 'user_id'"
        )
        (stats_rows,) = cursor.fetchone()
    assert counts == {"demo_behavior_log": 2_000, "demo_user": 50}
    assert stats_rows == 1
