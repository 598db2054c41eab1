from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from demo.models import BehaviorLog, User
from demo.seeding import EVENT_TYPES, HISTORY_DAYS, demo_seed


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_seed_demo_creates_skewed_realistic_data(db):
    before = datetime.now(UTC)
    output = seed("--users", "40", "--logs", "3000", "--seed", "7")

    assert "Seeded 40 users and 3000 behaviour logs" in output
    assert User.objects.count() == 40
    assert BehaviorLog.objects.count() == 3000
    # Emails unique (the constraint would refuse otherwise) and names in three languages.
    assert all(
        set(name) == {"vi", "en", "zh"} for name in User.objects.values_list("name", flat=True)
    )
    # Skew: the busiest user does far more than the median one.
    per_user = sorted(
        BehaviorLog.objects.values("user").annotate(n=Count("id")).values_list("n", flat=True)
    )
    assert per_user[-1] >= 5 * per_user[len(per_user) // 2]
    # Event types follow the skewed shares: the most common is page_view.
    counts = dict(BehaviorLog.objects.values_list("event_type").annotate(n=Count("id")))
    assert set(counts) <= {name for name, _ in EVENT_TYPES}
    assert max(counts, key=counts.get) == "page_view"
    assert counts["page_view"] > 3 * counts.get("payment", 0)
    # Metadata has a few keys; timestamps within the last 90 days.
    log = BehaviorLog.objects.first()
    assert {"device", "course_id"} <= set(log.metadata)
    oldest = BehaviorLog.objects.order_by("timestamp").first().timestamp
    newest = BehaviorLog.objects.order_by("-timestamp").first().timestamp
    assert oldest >= before - timedelta(days=HISTORY_DAYS, minutes=1)
    assert newest <= datetime.now(UTC)


def test_same_seed_same_data(db):
    when = datetime(2026, 3, 1, tzinfo=UTC)
    demo_seed(users=5, logs=50, seed=3, now=when)
    first = sorted(BehaviorLog.objects.values_list("user__email", "event_type", "timestamp"))
    call_command("seed_demo", "--replace", "--users", "1", "--logs", "0", stdout=StringIO())
    assert BehaviorLog.objects.count() == 0
    demo_seed(users=5, logs=50, seed=3, now=when)
    assert (
        sorted(BehaviorLog.objects.values_list("user__email", "event_type", "timestamp")) == first
    )


def test_if_empty_is_idempotent(db):
    seed("--users", "10", "--logs", "100", "--if-empty")
    ids = set(BehaviorLog.objects.values_list("id", flat=True))

    output = seed("--users", "10", "--logs", "100", "--if-empty")

    assert "already hold data: nothing to do" in output
    assert set(BehaviorLog.objects.values_list("id", flat=True)) == ids
    assert User.objects.count() == 10


def test_seeding_over_existing_data_needs_a_choice(db):
    seed("--users", "3", "--logs", "10")
    with pytest.raises(CommandError, match="--if-empty to keep them or --replace"):
        seed("--users", "3", "--logs", "10")
    seed("--users", "4", "--logs", "20", "--replace", "--seed", "9")
    assert (User.objects.count(), BehaviorLog.objects.count()) == (4, 20)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--users", "0"], "--users must be at least 1"), (["--logs", "-1"], "--logs must not")],
)
def test_seed_demo_refuses_bad_sizes(db, args, message):
    with pytest.raises(CommandError, match=message):
        seed(*args)
    assert User.objects.count() == 0
