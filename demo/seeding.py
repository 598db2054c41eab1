"""Realistic demo data: skewed user activity, skewed event types, one rare type, 90 days.

Deterministic for a given seed. Users go in with one COPY, logs through the data
service's batch insert (COPY too), in chunks so a progress bar can follow.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from django.db import connection, transaction
from psycopg import sql
from psycopg.types.json import Jsonb

from .models import BehaviorLog, User
from .services import behavior_log_batch_insert

# (event type, share of all events): a long tail, and one type rare enough to need an index.
EVENT_TYPES: tuple[tuple[str, float], ...] = (
    ("page_view", 0.40),
    ("video_play", 0.20),
    ("quiz_attempt", 0.12),
    ("lesson_complete", 0.10),
    ("login", 0.08),
    ("search", 0.06),
    ("loan_calculator", 0.028),
    ("payment", 0.0115),
    ("refund_request", 0.0005),
)
RARE_EVENT_TYPE = "refund_request"
CAMPAIGNS = ("tet_promo", "back_to_school", "summer_sale", "referral")
# Share of logs that carry a marketing campaign key (what the jsonb containment query finds).
CAMPAIGN_SHARE = 0.08
DEVICES = ("web", "android", "ios")
DEVICE_SHARES = (0.5, 0.35, 0.15)
HISTORY_DAYS = 90
USER_HISTORY_DAYS = 365
CHUNK_ROWS = 50_000

FIRST_NAMES = {
    "vi": ("Minh", "Lan", "Huong", "Tuan", "Anh", "Duc", "Mai", "Quang", "Thao", "Hoa"),
    "en": ("Minh", "Lan", "Huong", "Tuan", "Anh", "Duc", "Mai", "Quang", "Thao", "Hoa"),
    "zh": ("明", "兰", "香", "俊", "英", "德", "梅", "光", "草", "花"),
}
LAST_NAMES = {
    "vi": ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi"),
    "en": ("Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui"),
    "zh": ("阮", "陈", "黎", "范", "黄", "武", "邓", "裴"),
}
EMAIL_DOMAINS = ("edfinance.vn", "gmail.com", "yahoo.com", "outlook.com")


@dataclass(frozen=True)
class SeedResult:
    users: int
    logs: int


def demo_has_data() -> bool:
    return User.objects.exists() or BehaviorLog.objects.exists()


def demo_clear() -> None:
    """Empty both demo tables (TRUNCATE: instant on millions of rows, transactional)."""
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred: run pending checks first, TRUNCATE refuses them.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            sql.SQL("TRUNCATE {}, {}").format(
                sql.Identifier(BehaviorLog._meta.db_table), sql.Identifier(User._meta.db_table)
            )
        )


def demo_seed(
    *,
    users: int,
    logs: int,
    seed: int = 0,
    now: datetime | None = None,
    progress: Callable[[int], object] | None = None,
) -> SeedResult:
    """Create `users` users and `logs` behaviour logs in one transaction."""
    if users < 1:
        raise ValueError("users must be at least 1")
    if logs < 0:
        raise ValueError("logs must not be negative")
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    progress = progress or (lambda n: None)
    with transaction.atomic():
        user_ids = _insert_users(rng, count=users, now=now)
        progress(users)
        # Activity is log-normal: most users do little, a few do a lot.
        weights = rng.lognormal(mean=0.0, sigma=1.6, size=users)
        weights /= weights.sum()
        done = 0
        while done < logs:
            size = min(CHUNK_ROWS, logs - done)
            behavior_log_batch_insert(rows=_log_rows(rng, user_ids, weights, size=size, now=now))
            done += size
            progress(size)
    # Fresh statistics now, not when autovacuum gets to it: the planner (and the audit's
    # costing and representative values) would otherwise plan for empty tables.
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("ANALYZE {}, {}").format(
                sql.Identifier(User._meta.db_table), sql.Identifier(BehaviorLog._meta.db_table)
            )
        )
    return SeedResult(users=users, logs=logs)


def _insert_users(rng: np.random.Generator, *, count: int, now: datetime) -> list[uuid.UUID]:
    ids = [uuid.UUID(bytes=rng.bytes(16), version=4) for _ in range(count)]
    first = rng.integers(0, len(FIRST_NAMES["en"]), size=count).tolist()
    last = rng.integers(0, len(LAST_NAMES["en"]), size=count).tolist()
    domain = rng.integers(0, len(EMAIL_DOMAINS), size=count).tolist()
    capitalized = (rng.random(count) < 0.3).tolist()  # what makes lower(email) lookups needed
    age_s = rng.uniform(0, USER_HISTORY_DAYS * 86400, size=count).tolist()
    rows = []
    for i in range(count):
        f, la = first[i], last[i]
        local = f"{FIRST_NAMES['en'][f]}.{LAST_NAMES['en'][la]}{i}"
        email = f"{local if capitalized[i] else local.lower()}@{EMAIL_DOMAINS[domain[i]]}"
        name = {lang: f"{LAST_NAMES[lang][la]} {FIRST_NAMES[lang][f]}" for lang in FIRST_NAMES}
        rows.append((ids[i], email, name, now - timedelta(seconds=age_s[i])))
    copy_sql = sql.SQL("COPY {} (id, email, name, created_at) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(User._meta.db_table)
    )
    with connection.cursor() as wrapper, wrapper.cursor.copy(copy_sql) as copy:
        copy.set_types(["uuid", "varchar", "jsonb", "timestamptz"])
        for id_, email, name, created_at in rows:
            copy.write_row((id_, email, Jsonb(name), created_at))
    return ids


def _log_rows(
    rng: np.random.Generator,
    user_ids: list[uuid.UUID],
    weights: np.ndarray,
    *,
    size: int,
    now: datetime,
) -> list[dict]:
    names = [name for name, _ in EVENT_TYPES]
    shares = np.array([share for _, share in EVENT_TYPES])
    users = rng.choice(len(user_ids), size=size, p=weights).tolist()
    events = rng.choice(len(names), size=size, p=shares / shares.sum()).tolist()
    devices = rng.choice(len(DEVICES), size=size, p=DEVICE_SHARES).tolist()
    courses = rng.integers(1, 400, size=size).tolist()
    campaign = np.where(
        rng.random(size) < CAMPAIGN_SHARE, rng.integers(0, len(CAMPAIGNS), size=size), -1
    ).tolist()
    stamps = (now.timestamp() - rng.uniform(0, HISTORY_DAYS * 86400, size=size)).tolist()
    rows = []
    for i in range(size):
        metadata = {"device": DEVICES[devices[i]], "course_id": courses[i]}
        if campaign[i] >= 0:
            metadata["campaign"] = CAMPAIGNS[campaign[i]]
        rows.append(
            {
                "user_id": user_ids[users[i]],
                "event_type": names[events[i]],
                "metadata": metadata,
                "timestamp": datetime.fromtimestamp(stamps[i], UTC),
            }
        )
    return rows
