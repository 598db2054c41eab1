"""Who may call what: anonymous 401, authenticated non-staff 403, staff allowed, apply
only for superusers; token and session authentication both work."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoints(optimizations, audit) -> list[tuple[str, str, dict | None, int]]:
    """(method, path, body, status for staff) for every endpoint a staff user may call."""
    proposed, approved = optimizations[0], optimizations[1]
    return [
        ("get", "/api/optimizations/", None, 200),
        ("get", f"/api/optimizations/{proposed.id}/", None, 200),
        ("get", "/api/optimizations/similar/?query=user+email&limit=2", None, 200),
        ("post", f"/api/optimizations/{proposed.id}/approve/", {}, 200),
        ("post", f"/api/optimizations/{approved.id}/reject/", {"reason": "too big"}, 200),
        ("get", "/api/audits/", None, 200),
        ("post", "/api/audits/", {"target": "default"}, 202),
        ("get", f"/api/audits/{audit.id}/", None, 200),
        ("get", "/api/schema/", None, 200),
        ("get", "/api/docs/", None, 200),
        ("post", "/api/ask", {"question": "how many users are there?", "run": False}, 200),
        ("post", "/api/explain", {"sql": "SELECT 1"}, 200),
    ]


def _call(client, method: str, path: str, body: dict | None, **headers):
    if method == "get":
        return client.get(path, **headers)
    return client.post(path, body, format="json", **headers)


def test_anonymous_callers_get_401_with_a_token_challenge(anon_api, endpoints):
    apply_path = endpoints[1][1] + "apply/"
    for method, path, body, _ in [*endpoints, ("post", apply_path, {}, None)]:
        response = _call(anon_api, method, path, body)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response["WWW-Authenticate"] == "Token", path


def test_anonymous_api_errors_are_json(anon_api, endpoints):
    for method, path, body, _ in endpoints:
        if path.startswith("/api/docs/"):
            continue  # an HTML page: its error is a page too
        response = _call(anon_api, method, path, body, HTTP_ACCEPT="application/json")
        assert response.json() == {
            "error": "Authentication credentials were not provided.",
            "detail": "not_authenticated",
        }, path


def test_authenticated_non_staff_get_403(user_api, endpoints):
    apply_path = endpoints[1][1] + "apply/"
    for method, path, body, _ in [*endpoints, ("post", apply_path, {}, None)]:
        response = _call(user_api, method, path, body)
        assert response.status_code == 403, (method, path, response.status_code)


def test_staff_may_call_every_endpoint(staff_api, endpoints):
    for method, path, body, expected in endpoints:
        response = _call(staff_api, method, path, body)
        assert response.status_code == expected, (method, path, response.content[:300])


def test_apply_needs_a_superuser(staff_api, user_api, super_api, optimizations):
    rejected = optimizations[3]
    path = f"/api/optimizations/{rejected.id}/apply/"
    for client in (user_api, staff_api):
        response = client.post(path)
        assert response.status_code == 403
        assert response.json() == {
            "error": "Only a superuser may do this.",
            "detail": "permission_denied",
        }
    # The superuser is let through; a rejected recommendation is then refused as a conflict.
    response = super_api.post(path)
    assert response.status_code == 409
    assert response.json()["detail"] == "conflict"


def test_a_bad_token_is_a_401(anon_api, optimizations):
    anon_api.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anon_api.get("/api/optimizations/")
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token.", "detail": "authentication_failed"}


def test_staff_session_reads_and_csrf_protects_writes(staff_user, optimizations):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get("/api/optimizations/").status_code == 200
    response = client.post(f"/api/optimizations/{optimizations[0].id}/approve/")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def _fill_path(path: str, operation: dict) -> str:
    """The path with each parameter given a value of its declared type."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            is_int = parameter["schema"].get("type") == "integer"
            value = "1" if is_int else "0f0f0f0f-0000-4000-8000-000000000000"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


def test_every_operation_in_the_schema_refuses_anonymous_and_non_staff(
    staff_api, anon_api, user_api
):
    """Read from the schema, so an endpoint added later is held to the same rule."""
    schema = staff_api.get("/api/schema/?format=json").json()
    calls = [
        (method, _fill_path(path, operation))
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(calls) >= 11
    for method, path in calls:
        assert "{" not in path, path
        assert getattr(anon_api, method)(path, {}).status_code == 401, (method, path)
        assert getattr(user_api, method)(path, {}).status_code == 403, (method, path)
