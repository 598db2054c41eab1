"""Every API error is JSON {"error": message, "detail": field errors or code}; the errors
Django itself answers (404, 413, bad host, 405) are in test_json_errors.py."""

import pytest

pytestmark = pytest.mark.django_db


def test_malformed_json_is_a_400(staff_api, targets):
    response = staff_api.post("/api/audits/", "{not json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "parse_error"
    assert body["error"].startswith("JSON parse error")


def test_an_unsupported_media_type_is_a_415(staff_api, targets):
    response = staff_api.post("/api/audits/", "target=default", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["detail"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "target", "This field is required."),
        ({"target": ""}, "target", "This field may not be blank."),
        ({"target": "x" * 64}, "target", "Ensure this field has no more than 63 characters."),
        ({"target": "default", "verify": "maybe"}, "verify", "Must be a valid boolean."),
    ],
)
def test_bad_audit_input_names_the_field(staff_api, targets, body, field, message):
    response = staff_api.post("/api/audits/", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": f"{field}: {message}", "detail": {field: [message]}}


def test_an_unknown_audit_target_is_a_400_listing_the_configured_ones(staff_api, targets):
    response = staff_api.post("/api/audits/", {"target": "warehouse"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("target: Unknown target 'warehouse'; configured targets: default")


def test_a_disabled_target_is_a_400_that_says_so(staff_api, targets):
    targets["default"].enabled = False
    targets["default"].save()
    response = staff_api.post("/api/audits/", {"target": "default"}, format="json")
    assert response.status_code == 400
    assert "Target 'default' is disabled" in response.json()["error"]
