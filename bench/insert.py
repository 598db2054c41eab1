"""Batch insert of 100k BehaviorLog rows: the data service vs the ORM and raw COPY.

Baselines in the same run: per-row ORM create() (sampled on ORM_SAMPLE rows and
extrapolated per row: 100k single-row transactions would take minutes and measure
nothing more), bulk_create, and raw psycopg binary COPY of the same rows (the limit:
no validation, no user check; psycopg's own json.dumps for the jsonb column). Medians
over REPEAT runs; the table is emptied between runs.
"""

import random
from datetime import UTC, datetime, timedelta

from _common import bench_database, emit, log, median, timed

ROWS = 100_000
USERS = 1_000
ORM_SAMPLE = 5_000
REPEAT = 5
EVENT_TYPES = ("page_view", "video_play", "quiz_attempt", "login", "payment")


def make_rows(user_ids: list) -> list[dict]:
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "user_id": rng.choice(user_ids),
            "event_type": rng.choice(EVENT_TYPES),
            "metadata": {"device": rng.choice(("web", "ios")), "course_id": rng.randrange(400)},
            "timestamp": start + timedelta(seconds=i),
        }
        for i in range(ROWS)
    ]


def main() -> None:
    with bench_database("bench_insert"):
        from django.db import connection, transaction
        from psycopg import sql

        from demo.models import BehaviorLog, User
        from demo.services import behavior_log_batch_insert

        users = User.objects.bulk_create(
            User(email=f"bench{i}@example.com", name={"en": f"B {i}"}) for i in range(USERS)
        )
        rows = make_rows([user.id for user in users])

        def empty() -> None:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE demo_behavior_log")

        def check(expected: int) -> None:
            count = BehaviorLog.objects.count()
            if count != expected:
                raise RuntimeError(f"expected {expected} rows after the insert, found {count}")

        def service() -> None:
            behavior_log_batch_insert(rows=rows)

        copy_sql = sql.SQL(
            "COPY demo_behavior_log (user_id, event_type, metadata, timestamp) "
            "FROM STDIN (FORMAT BINARY)"
        )

        def raw_copy() -> None:
            with (
                transaction.atomic(),
                connection.cursor() as wrapper,
                wrapper.cursor.copy(copy_sql) as copy,
            ):
                copy.set_types(["uuid", "text", "jsonb", "timestamptz"])
                for row in rows:
                    copy.write_row(
                        (row["user_id"], row["event_type"], row["metadata"], row["timestamp"])
                    )

        def bulk_create() -> None:
            with transaction.atomic():
                BehaviorLog.objects.bulk_create(
                    (BehaviorLog(**row) for row in rows), batch_size=5_000
                )

        orm_chunk = ORM_SAMPLE // REPEAT

        def orm_create_sample() -> None:
            for row in rows[:orm_chunk]:
                BehaviorLog.objects.create(**row)

        times: dict[str, list[float]] = {"service": [], "raw_copy": [], "orm": []}
        for run in range(REPEAT):
            # Interleaved, so machine-wide drift hits every contender alike.
            for name, fn in (("raw_copy", raw_copy), ("service", service)):
                empty()
                times[name].append(timed(fn))
                check(ROWS)
            empty()
            times["orm"].append(timed(orm_create_sample) / orm_chunk * ROWS)
            check(orm_chunk)
            log(
                f"run {run + 1}/{REPEAT}: service {times['service'][-1]:.3f}s, "
                f"raw COPY {times['raw_copy'][-1]:.3f}s, ORM create() {times['orm'][-1]:.1f}s"
            )
        empty()
        bulk_s = timed(bulk_create)
        check(ROWS)
        empty()

        service_s = median(times["service"])
        raw_s = median(times["raw_copy"])
        orm_s = median(times["orm"])
        emit(
            {
                "insert_rows": ROWS,
                "insert_service_s": service_s,
                "insert_raw_copy_s": raw_s,
                "insert_bulk_create_s": bulk_s,
                "insert_orm_create_s_extrapolated": orm_s,
                "insert_orm_create_sampled_rows": ORM_SAMPLE,
                "insert_orm_create_note": (
                    f"per-row create() timed on {orm_chunk} rows per run, {ORM_SAMPLE} in all "
                    f"(each its own transaction, autocommit), extrapolated linearly to {ROWS}"
                ),
                "insert_speedup_vs_orm": orm_s / service_s,
                "insert_speedup_vs_bulk_create": bulk_s / service_s,
                "insert_ratio_to_raw_copy": service_s / raw_s,
                "insert_runs_s": times,
                "insert_repeats": REPEAT,
            }
        )


if __name__ == "__main__":
    main()
