import contextlib

import pytest
from django.db import DatabaseError, connection, transaction

pytestmark = [pytest.mark.urls("tests.metrics.urls"), pytest.mark.django_db]


def test_healthz_says_ok_with_the_database_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_unhealthy_when_the_database_fails(client):
    # A real failure: an aborted transaction refuses every statement, as a dead server would.
    with transaction.atomic():
        with connection.cursor() as cursor, contextlib.suppress(DatabaseError):
            cursor.execute("SELECT 1 / 0")
        response = client.get("/healthz")
        transaction.set_rollback(True)
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405
