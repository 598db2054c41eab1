"""Every /api/ answer is JSON whatever DEBUG says: with DEBUG on, Django answers unknown URLs,
oversized bodies and suspicious requests with its HTML debug pages unless the API's own
middleware replaces them. (A 500 under both settings: tests/test_secrets_server.py, on a
real server whose database role lacks grants.)"""

import json

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["debug_off", "debug_on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def _assert_json_error(response, status: int, detail: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["detail"] == detail
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/api/no-such-endpoint/",
        "/api/optimizations/x/y/z/",  # an id the URL patterns do not take
        "/api/ask/not-a-number/feedback",
    ],
)
def test_an_unknown_api_url_is_a_json_404(staff_api, debug, path):
    _assert_json_error(staff_api.get(path), 404, "not_found")


def test_a_body_over_the_upload_limit_is_a_json_413(staff_api, settings, debug):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = json.dumps({"question": "x" * 2 * 1024 * 1024})
    response = staff_api.generic("POST", "/api/ask", body, content_type="application/json")
    message = _assert_json_error(response, 413, "request_too_large")["error"]
    assert message == "The request is too large: at most 1.0 MB of body and 1000 fields."


def test_too_many_query_parameters_are_a_413_that_says_the_limits(staff_api, client, debug):
    """Django refuses the 1001st field before any view (TooManyFieldsSent): JSON under /api/,
    text elsewhere (without DEBUG), each saying the limits."""
    query = "&".join(f"x{number}=1" for number in range(1001))
    message = "The request is too large: at most 2.5 MB of body and 1000 fields."
    response = staff_api.get(f"/api/audits/?{query}")
    assert _assert_json_error(response, 413, "request_too_large")["error"] == message
    if not debug:
        response = client.get(f"/admin/login/?{query}")
        assert response.status_code == 413
        assert response.content.decode() == message


def test_a_bad_host_header_is_a_json_400(staff_api, debug):
    response = staff_api.get("/api/audits/", HTTP_HOST="evil.example")
    assert _assert_json_error(response, 400, "bad_request")["error"] == "Bad request."


def test_a_wrong_method_is_a_json_405_with_allow(staff_api, debug):
    response = staff_api.delete("/api/audits/")
    body = _assert_json_error(response, 405, "method_not_allowed")
    assert body["error"] == 'Method "DELETE" not allowed.'
    assert "POST" in response["Allow"]


def test_a_session_post_without_a_csrf_token_is_a_json_403(staff_user, debug):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post("/api/ask", {"question": "how many users?"}, format="json")
    body = _assert_json_error(response, 403, "permission_denied")
    assert body["error"].startswith("CSRF Failed")


def test_an_unknown_page_outside_the_api_stays_html(staff_client, debug):
    response = staff_client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
