from datetime import UTC, datetime, timedelta

import pytest

from demo.models import BehaviorLog, User

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_user(db):
    counter = iter(range(1_000_000))

    def make(**fields) -> User:
        n = next(counter)
        fields.setdefault("email", f"user{n}@example.com")
        fields.setdefault("name", {"en": f"User {n}", "vi": f"Người {n}", "zh": f"用户{n}"})
        return User.objects.create(**fields)

    return make


@pytest.fixture
def make_log(db):
    def make(user: User, *, event_type="page_view", ago=timedelta(0), now=NOW, **fields):
        return BehaviorLog.objects.create(
            user=user, event_type=event_type, timestamp=now - ago, **fields
        )

    return make
