"""Database values as JSON: what the API, the admin page and `manage.py ask --json` return."""

import datetime
import decimal
import ipaddress
import math
import uuid
from typing import Any

from psycopg.types.range import Range


def json_safe(value: Any) -> Any:
    """A JSON-serializable form of one value that loses no information.

    Decimal stays exact as a string; timedelta becomes seconds; bytes become "\\x" hex
    (PostgreSQL's bytea text form); ranges become {lower, upper, bounds, empty}.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, Range):
        return {
            "lower": json_safe(value.lower),
            "upper": json_safe(value.upper),
            "bounds": value.bounds,
            "empty": value.isempty,
        }
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    return str(value)
