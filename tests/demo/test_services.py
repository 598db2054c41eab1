import uuid
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from demo.models import BehaviorLog
from demo.services import BatchRowError, batch_insert_logs, behavior_log_batch_insert

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def rows_for(users, count):
    return [
        {
            "user_id": users[i % len(users)].id,
            "event_type": ("login", "page_view", "payment")[i % 3],
            "metadata": {"i": i, "device": "web", "tags": ["a", "b"]},
            "timestamp": T0 + timedelta(seconds=i),
        }
        for i in range(count)
    ]


def by_time(rows):
    return sorted(rows, key=lambda row: (row[3], str(row[0])))


def stored():
    return by_time(
        (log.user_id, log.event_type, log.metadata, log.timestamp)
        for log in BehaviorLog.objects.all()
    )


def test_batch_insert_writes_each_row_exactly_once(make_user):
    users = [make_user() for _ in range(3)]
    rows = rows_for(users, 250)

    assert behavior_log_batch_insert(rows=rows) == 250

    assert BehaviorLog.objects.count() == 250
    assert stored() == by_time(
        (r["user_id"], r["event_type"], r["metadata"], r["timestamp"]) for r in rows
    )
    # Ids come from the database, one distinct uuid per row.
    assert len(set(BehaviorLog.objects.values_list("id", flat=True))) == 250


def test_batch_insert_accepts_string_ids_other_timezones_and_no_metadata(make_user):
    user = make_user()
    plus7 = datetime(2026, 5, 1, 15, 30, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    count = batch_insert_logs(
        [{"user_id": str(user.id), "event_type": "login", "timestamp": plus7}]
    )

    assert count == 1
    log = BehaviorLog.objects.get()
    assert (log.user_id, log.event_type, log.metadata) == (user.id, "login", {})
    assert log.timestamp == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def test_an_escaped_backslash_u0000_is_not_taken_for_a_nul(make_user):
    row = {**rows_for([make_user()], 1)[0], "metadata": {"path": "C:\\u0000"}}
    assert behavior_log_batch_insert(rows=[row]) == 1
    assert BehaviorLog.objects.get().metadata == {"path": "C:\\u0000"}


def test_rows_with_and_without_metadata_mix(make_user):
    rows = rows_for([make_user()], 6)
    for row in rows[::2]:
        del row["metadata"]
    rows[1]["timestamp"] = rows[1]["timestamp"].astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))

    assert behavior_log_batch_insert(rows=rows) == 6

    assert stored() == by_time(
        (r["user_id"], r["event_type"], r.get("metadata", {}), r["timestamp"]) for r in rows
    )


def test_empty_batch_writes_nothing(db):
    assert behavior_log_batch_insert(rows=[]) == 0
    assert BehaviorLog.objects.count() == 0


def _missing_field(row):
    del row["event_type"]


def _wrong_type_timestamp(row):
    row["timestamp"] = "2026-05-01"


def _naive_timestamp(row):
    row["timestamp"] = datetime(2026, 5, 1)


def _wrong_type_user(row):
    row["user_id"] = 42


def _unknown_user(row):
    row["user_id"] = uuid.uuid4()


def _metadata_not_a_dict(row):
    row["metadata"] = ["not", "an", "object"]


def _metadata_not_json(row):
    row["metadata"] = {"tags": {"a", "b"}}  # a set has no JSON form


def _metadata_nan(row):
    row["metadata"] = {"ratio": float("nan")}  # JSON has no NaN; jsonb would refuse it


def _event_type_with_nul(row):
    row["event_type"] = "log\x00in"


def _metadata_with_nul(row):
    row["metadata"] = {"note": "a\x00b"}


def _unknown_field_instead_of_metadata(row):
    del row["metadata"]
    row["colour"] = "red"


class _NoOffset(tzinfo):
    def utcoffset(self, dt):
        return None


def _tzinfo_without_offset(row):
    row["timestamp"] = datetime(2026, 5, 1, tzinfo=_NoOffset())


def _event_type_too_long(row):
    row["event_type"] = "x" * 65


def _unknown_field(row):
    row["colour"] = "red"


@pytest.mark.parametrize(
    ("spoil", "field", "problem"),
    [
        (_missing_field, "event_type", "is missing"),
        (_wrong_type_timestamp, "timestamp", "timezone-aware datetime"),
        (_naive_timestamp, "timestamp", "timezone-aware datetime"),
        (_wrong_type_user, "user_id", "must be a UUID"),
        (_unknown_user, "user_id", "is not a known user"),
        (_metadata_not_a_dict, "metadata", "JSON object"),
        (_metadata_not_json, "metadata", "not JSON-serializable"),
        (_metadata_nan, "metadata", "not JSON-serializable"),
        (_event_type_too_long, "event_type", "at most 64 characters"),
        (_event_type_with_nul, "event_type", "without NUL"),
        (_metadata_with_nul, "metadata", "NUL character"),
        (_unknown_field, "colour", "is not a field"),
        (_unknown_field_instead_of_metadata, "colour", "is not a field"),
        (_tzinfo_without_offset, "timestamp", "timezone-aware datetime"),
    ],
)
def test_one_bad_row_writes_nothing_and_the_error_names_it(make_user, spoil, field, problem):
    users = [make_user() for _ in range(2)]
    rows = rows_for(users, 100)
    spoil(rows[57])

    with pytest.raises(BatchRowError) as caught:
        behavior_log_batch_insert(rows=rows)

    assert caught.value.index == 57
    assert caught.value.field == field
    assert str(caught.value).startswith("row 57: ")
    assert problem in str(caught.value)
    assert "nothing of the batch was written" in str(caught.value)
    assert BehaviorLog.objects.count() == 0


def test_unknown_users_error_names_the_first_row_and_counts_the_rest(make_user):
    rows = rows_for([make_user()], 10)
    ghost = uuid.uuid4()
    for index in (3, 6, 9):
        rows[index]["user_id"] = ghost

    with pytest.raises(BatchRowError) as caught:
        behavior_log_batch_insert(rows=rows)

    assert (caught.value.index, caught.value.bad_rows) == (3, 3)
    assert str(ghost) in str(caught.value)
    assert BehaviorLog.objects.count() == 0


def test_a_row_that_is_not_a_mapping_is_refused(make_user):
    rows = [*rows_for([make_user()], 2), ("not", "a", "dict")]

    with pytest.raises(BatchRowError, match="row 2: row must be a mapping"):
        behavior_log_batch_insert(rows=rows)
    assert BehaviorLog.objects.count() == 0
