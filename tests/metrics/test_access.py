"""/metrics answers allowed addresses or the right bearer token, and nobody else."""

import pytest
from django.core.exceptions import ImproperlyConfigured

pytestmark = [pytest.mark.urls("tests.metrics.urls"), pytest.mark.django_db]

OUTSIDE = "203.0.113.7"
TOKEN = "s3cret-scrape-token"


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "::1"]
    settings.METRICS_BEARER_TOKEN = TOKEN
    return settings


def get(client, address: str, **headers):
    return client.get("/metrics", REMOTE_ADDR=address, headers=headers)


def test_allowed_address_needs_no_token(client):
    response = get(client, "127.0.0.1")
    assert response.status_code == 200
    assert b"db_architect_metrics_up 1.0" in response.content
    assert response["Content-Type"].startswith("text/plain; version=")


def test_other_address_without_token_is_forbidden(client):
    response = get(client, OUTSIDE)
    assert response.status_code == 403
    assert b"METRICS_ALLOWED_IPS" in response.content
    assert b"db_architect" not in response.content


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer wrong-token",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
    ],
)
def test_wrong_token_is_forbidden(client, authorization):
    assert get(client, OUTSIDE, Authorization=authorization).status_code == 403


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_right_token_from_any_address(client, scheme):
    response = get(client, OUTSIDE, Authorization=f"{scheme} {TOKEN}")
    assert response.status_code == 200
    assert b"db_architect_slow_queries_total" in response.content


def test_empty_token_setting_never_matches(client, metrics_settings):
    metrics_settings.METRICS_BEARER_TOKEN = ""
    assert get(client, OUTSIDE, Authorization="Bearer ").status_code == 403
    assert get(client, OUTSIDE, Authorization="Bearer").status_code == 403


def test_networks_and_ipv4_mapped_addresses(client, metrics_settings):
    metrics_settings.METRICS_ALLOWED_IPS = [
        "10.0.0.0/8",
        " fd00::/8",
        "",
    ]  # as env.list reads "a, b,"
    assert get(client, "10.20.30.40").status_code == 200
    assert get(client, "::ffff:10.1.1.1").status_code == 200
    assert get(client, "fd00::5").status_code == 200
    assert get(client, "11.0.0.1").status_code == 403
    assert get(client, "127.0.0.1").status_code == 403


def test_forwarded_for_header_is_not_trusted(client):
    response = get(client, OUTSIDE, **{"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"})
    assert response.status_code == 403


def test_bad_allowed_entry_is_a_configuration_error_naming_it(client, metrics_settings):
    metrics_settings.METRICS_ALLOWED_IPS = ["127.0.0.1", "localhost"]
    with pytest.raises(ImproperlyConfigured, match="'localhost'"):
        get(client, OUTSIDE)


def test_only_get_and_head(client):
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405
    assert client.head("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
