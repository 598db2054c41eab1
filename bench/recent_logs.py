"""Recent 100 logs of one user on 1M logs, through the data service, before and after the
index the audit recommends for that query: (user_id, "timestamp" DESC).

Users are drawn weighted by activity (busy users make more requests, and they are the
ones a missing index hurts). p50 over CALLS calls each, same users, same order.
"""

from _common import bench_database, emit, log, percentile, timed

USERS = 20_000
LOGS = 1_000_000
CALLS = 500
HEAVY_USERS = 20
# The DDL of the audit's recommendation for the demo's recent-logs query.
RECOMMENDED_INDEX = (
    'CREATE INDEX bench_recent_logs_idx ON demo_behavior_log (user_id, "timestamp" DESC)'
)


def main() -> None:
    with bench_database("bench_recent_logs"):
        from django.db import connection

        from demo.seeding import demo_seed
        from demo.selectors import RECENT_LOGS_SQL, behavior_log_list_recent
        from demo.workload import workload_samples

        log(f"seeding {USERS} users and {LOGS} logs")
        seed_s = timed(lambda: demo_seed(users=USERS, logs=LOGS, seed=1))
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE demo_behavior_log")
        user_ids = workload_samples(size=CALLS, seed=1).user_ids
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT user_id FROM demo_behavior_log GROUP BY user_id "
                "ORDER BY count(*) DESC LIMIT %s",
                [HEAVY_USERS],
            )
            heavy_ids = [row[0] for row in cursor.fetchall()]

        def plan_uses(index_name: str, user_id) -> bool:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (FORMAT JSON) " + RECENT_LOGS_SQL, [user_id, 100])
                return index_name in str(cursor.fetchone()[0])

        def p50_ms(users: list) -> tuple[float, float]:
            for user_id in users[:50]:  # warm the cache and the connection
                behavior_log_list_recent(user_id=user_id)
            times = [timed(lambda u=u: behavior_log_list_recent(user_id=u)) for u in users]
            return percentile(times, 0.5) * 1000, percentile(times, 0.95) * 1000

        before_p50, before_p95 = p50_ms(user_ids)
        heavy_before_p50, _ = p50_ms(heavy_ids * (CALLS // HEAVY_USERS))
        log(f"before the index: p50 {before_p50:.3f} ms, p95 {before_p95:.3f} ms")
        with connection.cursor() as cursor:
            cursor.execute(RECOMMENDED_INDEX)
            cursor.execute("ANALYZE demo_behavior_log")
        if not plan_uses("bench_recent_logs_idx", user_ids[0]):
            raise RuntimeError("the planner does not use the recommended index")
        after_p50, after_p95 = p50_ms(user_ids)
        heavy_after_p50, _ = p50_ms(heavy_ids * (CALLS // HEAVY_USERS))
        log(f"after the index: p50 {after_p50:.3f} ms, p95 {after_p95:.3f} ms")
        emit(
            {
                "recent_logs_rows": LOGS,
                "recent_logs_calls": CALLS,
                "recent_logs_before_index_p50_ms": before_p50,
                "recent_logs_before_index_p95_ms": before_p95,
                "recent_logs_p50_ms": after_p50,
                "recent_logs_p95_ms": after_p95,
                "recent_logs_speedup": before_p50 / after_p50,
                "recent_logs_heavy_users_before_index_p50_ms": heavy_before_p50,
                "recent_logs_heavy_users_p50_ms": heavy_after_p50,
                "recent_logs_heavy_users_note": (
                    f"the {HEAVY_USERS} most active of {USERS} users: where the index matters most"
                ),
                "recent_logs_index_ddl": RECOMMENDED_INDEX,
                "recent_logs_seed_s": seed_s,
            }
        )


if __name__ == "__main__":
    main()
