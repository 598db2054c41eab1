import pytest

from nlsql.sessions import kept_sessions_close


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="staff", password="staff-pass-123", is_staff=True
    )


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        username="root", password="root-pass-123", email="root@example.com"
    )


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def super_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test database; the read-only sessions ask-the-database keeps between
    questions are closed before it is dropped (they would hold it open)."""
    yield
    kept_sessions_close()
