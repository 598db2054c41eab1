from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from demo import paginators
from demo.models import BehaviorLog, User
from demo.services import behavior_log_batch_insert


@pytest.fixture
def some_logs(make_user, make_log):
    users = [make_user() for _ in range(3)]
    for i in range(12):
        make_log(users[i % 3], event_type=("login", "payment")[i % 2], ago=timedelta(hours=i))
    return users


@pytest.mark.parametrize("model", [User, BehaviorLog])
def test_changelists_load_for_staff(staff_client, some_logs, model):
    url = reverse(f"admin:demo_{model._meta.model_name}_changelist")
    response = staff_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count()


def test_log_list_filters_and_search(staff_client, some_logs):
    url = reverse("admin:demo_behaviorlog_changelist")

    by_type = staff_client.get(url, {"event_type": "payment"})
    assert by_type.status_code == 200
    assert {log.event_type for log in by_type.context["cl"].result_list} == {"payment"}
    assert b"payment" in by_type.content

    by_user = staff_client.get(url, {"q": some_logs[1].email})
    assert {log.user_id for log in by_user.context["cl"].result_list} == {some_logs[1].id}

    last_week = staff_client.get(
        url,
        {
            "timestamp__gte": "2026-05-25 00:00:00+00:00",
            "timestamp__lt": "2026-06-02 00:00:00+00:00",
        },
    )
    assert last_week.status_code == 200
    assert last_week.context["cl"].result_count == 12


def test_user_search_by_email(staff_client, some_logs):
    response = staff_client.get(reverse("admin:demo_user_changelist"), {"q": some_logs[2].email})
    assert list(response.context["cl"].result_list) == [some_logs[2]]


def test_change_pages_load_for_staff(staff_client, some_logs):
    log = BehaviorLog.objects.first()
    user = some_logs[0]

    log_page = staff_client.get(reverse("admin:demo_behaviorlog_change", args=[log.pk]))
    user_page = staff_client.get(reverse("admin:demo_user_change", args=[user.pk]))

    assert (log_page.status_code, user_page.status_code) == (200, 200)
    assert str(log.pk) in log_page.content.decode()
    assert user.email in user_page.content.decode()


@pytest.mark.parametrize("model", [User, BehaviorLog])
def test_changelists_redirect_anonymous_to_login(client, db, model):
    url = reverse(f"admin:demo_{model._meta.model_name}_changelist")
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_large_lists_count_by_estimate_not_by_scan(staff_client, make_user, monkeypatch):
    """Past the exact-count limit the paginator takes the planner's estimate."""
    monkeypatch.setattr(paginators, "EXACT_COUNT_LIMIT", 50)
    user = make_user()
    now = timezone.now()
    behavior_log_batch_insert(
        rows=[
            {"user_id": user.id, "event_type": "login", "timestamp": now - timedelta(seconds=i)}
            for i in range(300)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE demo_behavior_log")

    response = staff_client.get(reverse("admin:demo_behaviorlog_changelist"))

    assert response.status_code == 200
    # The exact count stops at 51; the analyzed table's estimate is the true 300.
    assert response.context["cl"].result_count == 300
