"""Writes of the demo data service (the seed's DatabaseService), plus its public names.

Batch inserts go through PostgreSQL binary COPY: every row is checked first, in one pass
and with one query for the user ids, so a bad batch is refused before a byte is written.
"""

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import attrgetter
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from psycopg import adapt, postgres, sql
from psycopg.pq import Format

from .selectors import (
    behavior_log_list_recent,
    user_active_stats,
    user_get,
)

EVENT_TYPE_MAX_LENGTH = 64
REQUIRED_FIELDS = ("user_id", "event_type", "timestamp")
ALLOWED_FIELDS = frozenset((*REQUIRED_FIELDS, "metadata"))
COPY_COLUMNS = ("user_id", "event_type", "metadata", "timestamp")
_EMPTY: dict = {}
_ABSENT = object()
_ALWAYS_AWARE = (timezone, ZoneInfo)
# NaN and Infinity are not JSON: jsonb would refuse them in the middle of the COPY.
_dumps = json.JSONEncoder(allow_nan=False).encode
# PostgreSQL text and jsonb cannot hold NUL: refuse it up front, not mid-COPY.
_NUL_ESCAPE = "\\u0000"


class BatchRowError(ValueError):
    """One row of a batch is wrong; nothing of the batch was written."""

    def __init__(self, index: int, field: str, problem: str, *, bad_rows: int = 1) -> None:
        self.index = index
        self.field = field
        self.problem = problem
        self.bad_rows = bad_rows
        more = f" ({bad_rows - 1} more rows have the same problem)" if bad_rows > 1 else ""
        super().__init__(f"row {index}: {field} {problem}{more}; nothing of the batch was written")


@dataclass(frozen=True, slots=True)
class _CheckedBatch:
    """Checked rows as columns, in COPY column order; metadata already JSON text."""

    user_ids: list[uuid.UUID]
    event_types: list[str]
    metadata_json: list[str]
    timestamps: list[datetime]

    def __len__(self) -> int:
        return len(self.user_ids)

    def rows(self) -> Iterator[tuple]:
        columns = (self.user_ids, self.event_types, self.metadata_json, self.timestamps)
        return zip(*columns, strict=True)


class _JsonTextBinaryDumper(adapt.Dumper):
    """Binary jsonb from JSON text we already serialized while validating (no second dumps)."""

    format = Format.BINARY

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


_JsonTextBinaryDumper.oid = postgres.types["jsonb"].oid


def _as_uuid(value, index: int) -> uuid.UUID:
    if type(value) is uuid.UUID:
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise BatchRowError(index, "user_id", f"must be a UUID, got {value!r}")


def _check_row(row, index: int) -> tuple:
    """One row's fields, types and sizes; raises BatchRowError naming the row."""
    if not isinstance(row, Mapping):
        raise BatchRowError(index, "row", f"must be a mapping, got {type(row).__name__}")
    for field in REQUIRED_FIELDS:
        if field not in row:
            raise BatchRowError(index, field, "is missing")
    if len(row) > len(REQUIRED_FIELDS) and (unknown := row.keys() - ALLOWED_FIELDS):
        raise BatchRowError(index, ", ".join(sorted(map(str, unknown))), "is not a field")
    event_type = row["event_type"]
    if (
        type(event_type) is not str
        or not 0 < len(event_type) <= EVENT_TYPE_MAX_LENGTH
        or "\x00" in event_type
    ):
        raise BatchRowError(
            index,
            "event_type",
            f"must be a non-empty string of at most {EVENT_TYPE_MAX_LENGTH} characters "
            f"without NUL, got {event_type!r}",
        )
    timestamp = row["timestamp"]
    if not isinstance(timestamp, datetime) or timestamp.utcoffset() is None:
        raise BatchRowError(
            index, "timestamp", f"must be a timezone-aware datetime, got {timestamp!r}"
        )
    metadata = row.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BatchRowError(
            index, "metadata", f"must be a JSON object (dict), got {type(metadata).__name__}"
        )
    try:
        metadata_json = _dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise BatchRowError(index, "metadata", f"is not JSON-serializable: {exc}") from None
    if _NUL_ESCAPE in metadata_json and _holds_nul(metadata):
        raise BatchRowError(index, "metadata", "holds a NUL character, which jsonb refuses")
    return (_as_uuid(row["user_id"], index), event_type, metadata_json, timestamp)


def _holds_nul(value) -> bool:
    """A NUL in any key or string (only asked when the JSON text shows the escape)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class _NotTheCommonCase(Exception):
    """The batch needs the row-by-row check, which finds and names the bad row."""


def _check_columns(rows: list) -> _CheckedBatch:
    """The common case checked a column at a time (C-speed passes, no per-row call).

    Raises _NotTheCommonCase on anything unusual (a bad value, a string id, a dict
    subclass): the row-by-row check then decides, exactly and with the row's index.
    """
    if set(map(type, rows)) != {dict}:
        raise _NotTheCommonCase
    try:
        user_ids = [row["user_id"] for row in rows]
        event_types = [row["event_type"] for row in rows]
        timestamps = [row["timestamp"] for row in rows]
    except KeyError:
        raise _NotTheCommonCase from None
    metadatas = [row.get("metadata", _ABSENT) for row in rows]
    # With the three required keys present, a row has no unknown key when it has three
    # keys, or four of which one is metadata.
    lengths = set(map(len, rows))
    absent = metadatas.count(_ABSENT)
    if not lengths <= {3, 4} or sum(map(len, rows)) - 3 * len(rows) != len(rows) - absent:
        raise _NotTheCommonCase
    if absent:
        metadatas = [_EMPTY if value is _ABSENT else value for value in metadatas]
    if set(map(type, user_ids)) != {uuid.UUID}:
        raise _NotTheCommonCase
    kinds = set(event_types)
    if set(map(type, kinds)) != {str} or "\x00" in "".join(kinds):
        raise _NotTheCommonCase
    if min(map(len, kinds)) == 0 or max(map(len, kinds)) > EVENT_TYPE_MAX_LENGTH:
        raise _NotTheCommonCase
    if set(map(type, timestamps)) != {datetime}:
        raise _NotTheCommonCase
    zones = set(map(attrgetter("tzinfo"), timestamps))
    if None in zones:
        raise _NotTheCommonCase
    # timezone and ZoneInfo always give an offset; other tzinfo classes are asked per row.
    if not all(type(zone) in _ALWAYS_AWARE for zone in zones) and any(
        value.utcoffset() is None for value in timestamps
    ):
        raise _NotTheCommonCase
    if set(map(type, metadatas)) != {dict}:
        raise _NotTheCommonCase
    try:
        metadata_json = list(map(_dumps, metadatas))
    except (TypeError, ValueError):
        raise _NotTheCommonCase from None
    if _NUL_ESCAPE in "".join(metadata_json):
        raise _NotTheCommonCase
    return _CheckedBatch(user_ids, event_types, metadata_json, timestamps)


def _check_rows(rows: Iterable[Mapping]) -> _CheckedBatch:
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return _CheckedBatch([], [], [], [])
    try:
        return _check_columns(rows)
    except _NotTheCommonCase:
        checked = [_check_row(row, index) for index, row in enumerate(rows)]
        return _CheckedBatch(*(list(column) for column in zip(*checked, strict=True)))


def _check_users_exist(batch: _CheckedBatch) -> None:
    """One query for every distinct user id; names the first row whose user is unknown."""
    user_ids = list(set(batch.user_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wanted.id FROM unnest(%s::uuid[]) AS wanted(id) "
            "WHERE NOT EXISTS (SELECT 1 FROM demo_user WHERE demo_user.id = wanted.id)",
            [user_ids],
        )
        missing = {row[0] for row in cursor.fetchall()}
    if not missing:
        return
    bad = [index for index, user_id in enumerate(batch.user_ids) if user_id in missing]
    raise BatchRowError(
        bad[0], "user_id", f"{batch.user_ids[bad[0]]} is not a known user", bad_rows=len(bad)
    )


def behavior_log_batch_insert(*, rows: Iterable[Mapping]) -> int:
    """Insert many behaviour logs with one binary COPY; all rows or none. Returns the count.

    Each row: user_id (UUID or its string), event_type (str), timestamp (aware datetime),
    metadata (dict, optional). Ids are generated by the database (gen_random_uuid()).
    """
    checked = _check_rows(rows)
    if not checked:
        return 0
    with transaction.atomic():
        _check_users_exist(checked)
        copy_sql = sql.SQL("COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)").format(
            table=sql.Identifier("demo_behavior_log"),
            columns=sql.SQL(", ").join(map(sql.Identifier, COPY_COLUMNS)),
        )
        with connection.cursor() as wrapper:
            cursor = wrapper.cursor
            cursor.adapters.register_dumper(None, _JsonTextBinaryDumper)
            with cursor.copy(copy_sql) as copy:
                copy.set_types(["uuid", "text", "jsonb", "timestamptz"])
                write_row = copy.write_row
                for row in checked.rows():
                    write_row(row)
    return len(checked)


# The seed's DatabaseService names, kept for callers that know them.
def get_user_by_id(user_id):
    return user_get(user_id=user_id)


def recent_behavior_logs(user_id, limit: int = 100):
    return behavior_log_list_recent(user_id=user_id, limit=limit)


def batch_insert_logs(rows: Iterable[Mapping]) -> int:
    return behavior_log_batch_insert(rows=rows)


def active_user_stats(days: int = 7):
    return user_active_stats(days=days)
