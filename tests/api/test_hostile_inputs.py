"""Every API operation, read from the OpenAPI schema (so a new endpoint is swept too), against
hostile input: never a 5xx, every error JSON with a message, nothing written by a refused call.

Also the routes outside the API and the admin (health, metrics), walked from the URL resolver.
"""

import json

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from dbarchitect.models import AuditRun
from nlsql.models import QuestionLog, TrainingItem
from optimizations.models import OptimizationLog
from tests.routes import HOSTILE_PATH_IDS, route_templates

pytestmark = [
    pytest.mark.django_db,
    # Tests run Celery eagerly; the API still asks the result backend about unknown ids.
    pytest.mark.filterwarnings("ignore:Results are not stored in backend:RuntimeWarning"),
]

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
# (path template, method, operation) for every documented operation.
OPERATIONS = [
    (path, method, operation)
    for path, item in SCHEMA["paths"].items()
    for method, operation in item.items()
]
OPERATION_IDS = [f"{method.upper()} {path}" for path, method, _ in OPERATIONS]
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}

# Values a fuzzer sends into any field: raw JSON text, so lone surrogates stay surrogates.
HOSTILE_JSON = {
    "nul": json.dumps("a\x00b"),
    "only_nul": json.dumps("\x00"),
    "surrogate": '"\\ud800x"',
    "huge_int": str(10**30),
    "negative": "-1",
    "float": "1.5",
    "nan": '"NaN"',
    "long_text": json.dumps("x" * 100_000),
    "empty": '""',
    "blank": '"   "',
    "null": "null",
    "true": "true",
    "list": '["a", 1]',
    "object": '{"a": {"b": []}}',
    "rtl_emoji": json.dumps("\u202eSELECT \U0001f4a5 \u05e9\u05dc\u05d5\u05dd"),
    "sql_injection": json.dumps("'; DROP TABLE demo_user; --"),
}
# The same for query strings: already percent-encoded.
HOSTILE_QUERY = {
    "nul": "a%00b",
    "invalid_utf8": "%ED%A0%80%FF",
    "huge_int": str(10**30),
    "negative": "-1",
    "zero": "0",
    "float": "1.5",
    "nan": "nan",
    "long_text": "x" * 10_000,
    "empty": "",
    "rtl_emoji": "%E2%80%AE%F0%9F%92%A5",
    "bad_date": "2024-13-45T99:99",
    "sql_injection": "%27%3B+DROP+TABLE+demo_user%3B+--",
}


ROUTES = route_templates()
OTHER_ROUTES = [
    route for route in ROUTES if not route.startswith(("/admin/", "/api/")) and "{" not in route
]


@pytest.fixture
def question_log(staff_user) -> QuestionLog:
    return QuestionLog.objects.create(
        user=staff_user,
        question="how many users are there?",
        sql="SELECT count(*) FROM demo_user",
        status=QuestionLog.Status.OK,
    )


# Path parameters where no object is reached (authentication, permissions and the method are
# checked first): any well-formed id.
ANY_IDS = {
    "optimization_id": "00000000-0000-0000-0000-000000000001",
    "audit_id": "00000000-0000-0000-0000-000000000001",
    "log_id": "1",
}


@pytest.fixture
def path_ids(optimizations, audit, question_log) -> dict[str, str]:
    """A real object for every path parameter the schema names: calls reach the services."""
    return {
        "optimization_id": str(optimizations[0].id),  # proposed: every decision is open
        "audit_id": str(audit.id),
        "log_id": str(question_log.id),
    }


def _path(template: str, ids: dict[str, str]) -> str:
    return template.format(**ids)


def _query_parameters(operation: dict) -> list[dict]:
    return [p for p in operation.get("parameters", []) if p["in"] == "query"]


def _body_properties(operation: dict) -> dict[str, dict]:
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    if ref is None:
        return {}
    return SCHEMA["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {})


def _valid_value(name: str, spec: dict) -> object:
    """A plausible valid value for a body field, so a hostile neighbour reaches the service."""
    if "enum" in spec:
        return spec["enum"][0]
    if "$ref" in spec or "allOf" in spec:
        enum = SCHEMA["components"]["schemas"][
            (spec.get("$ref") or spec["allOf"][0]["$ref"]).rsplit("/", 1)[1]
        ]
        return enum["enum"][0]
    return {"target": "default", "sql": "SELECT 1", "run": False}.get(
        name, {"boolean": False, "integer": 1, "number": 1.0}.get(spec.get("type"), "x")
    )


def _state() -> tuple:
    """What a refused call must leave as it was."""
    return (
        sorted(OptimizationLog.objects.values_list("id", "status", "decided_at", "details")),
        sorted(QuestionLog.objects.values_list("id", "feedback")),
        TrainingItem.objects.count(),
        AuditRun.objects.count(),
    )


def _assert_answered(response, *, context) -> None:
    """Never a 5xx; an error is JSON with a message."""
    assert response.status_code < 500, (context, response.status_code, response.content[:300])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and body["error"].strip(), (context, body)
        assert "detail" in body, (context, body)


def test_every_api_route_is_in_the_schema():
    """The sweep reads the schema: a route missing from it would escape the sweep."""
    documented = set(SCHEMA["paths"]) | {"/api/schema/", "/api/docs/"}
    api_routes = {route for route in ROUTES if route.startswith("/api/")}
    assert api_routes <= documented, api_routes - documented
    assert len(OPERATIONS) >= 13


@pytest.mark.parametrize(("template", "method", "operation"), OPERATIONS, ids=OPERATION_IDS)
def test_callers_without_staff_get_json_401_or_403(template, method, operation, anon_api, user_api):
    path = _path(template, ANY_IDS)
    for client, expected in ((anon_api, 401), (user_api, 403)):
        response = client.generic(method.upper(), path, "{}", content_type="application/json")
        assert response.status_code == expected, (client, path, response.status_code)
        _assert_answered(response, context=path)


@pytest.mark.parametrize(
    "authorization",
    ["Token a\x00b", "Token " + "f" * 41, "Token \u00e9t\u00e9", "Token", "Token a b", "Bearer x"],
)
@pytest.mark.parametrize(("template", "method", "operation"), OPERATIONS, ids=OPERATION_IDS)
def test_a_malformed_token_is_a_json_401(template, method, operation, authorization):
    """A NUL in the key reached the token lookup: PostgreSQL refused it, a 500."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    response = client.generic(method.upper(), _path(template, ANY_IDS))
    assert response.status_code == 401, (authorization, response.status_code)
    _assert_answered(response, context=authorization)


@pytest.mark.parametrize("template", sorted(SCHEMA["paths"]))
def test_undocumented_methods_are_json_405s(template, staff_api, super_api):
    path = _path(template, ANY_IDS)
    allowed = set(SCHEMA["paths"][template])
    for method in sorted(HTTP_METHODS - allowed):
        response = super_api.generic(method.upper(), path)
        assert response.status_code == 405, (method, path, response.status_code)
        _assert_answered(response, context=(method, path))
    for method in ("HEAD", "OPTIONS"):
        response = staff_api.generic(method, path)
        assert response.status_code < 500, (method, path)


@pytest.mark.parametrize("value", HOSTILE_PATH_IDS.values(), ids=HOSTILE_PATH_IDS.keys())
@pytest.mark.parametrize(
    ("template", "method", "operation"),
    [op for op in OPERATIONS if "{" in op[0]],
    ids=[i for i, op in zip(OPERATION_IDS, OPERATIONS, strict=True) if "{" in op[0]],
)
def test_a_malformed_or_unknown_path_id_is_a_json_404(
    template, method, operation, value, super_api
):
    before = _state()
    ids = dict.fromkeys(ANY_IDS, value)
    response = super_api.generic(method.upper(), template.format(**ids), "{}", "application/json")
    assert response.status_code == 404, (template, value, response.status_code)
    _assert_answered(response, context=(template, value))
    assert _state() == before


GET_PARAMETERS = [
    (path, parameter["name"])
    for path, method, operation in OPERATIONS
    if method == "get"
    for parameter in _query_parameters(operation)
]


@pytest.mark.parametrize(("template", "name"), GET_PARAMETERS, ids=map("?".join, GET_PARAMETERS))
def test_hostile_query_parameters_get_an_answer_never_a_5xx(template, name, staff_api, path_ids):
    path = _path(template, path_ids)
    base = "query=users+by+email&" if template.endswith("/similar/") else ""
    for label, value in HOSTILE_QUERY.items():
        response = staff_api.get(f"{path}?{base}{name}={value}")
        _assert_answered(response, context=(name, label))
    # Repeated and unknown parameters too.
    response = staff_api.get(f"{path}?{base}{name}=1&{name}=a%00b&no_such_parameter=%00")
    assert response.status_code == 400
    _assert_answered(response, context=name)


def test_a_nul_in_a_query_parameter_is_a_400_naming_it(staff_api, optimizations):
    """PostgreSQL cannot hold NUL: a query string carrying one is refused at the edge."""
    response = staff_api.get("/api/optimizations/?target=def%00ault")
    assert response.status_code == 400
    assert response.json() == {
        "error": "target: Null characters are not allowed.",
        "detail": {"target": ["Null characters are not allowed."]},
    }


BODY_FIELDS = [
    (path, method, name)
    for path, method, operation in OPERATIONS
    for name in _body_properties(operation)
]


@pytest.mark.parametrize(
    ("template", "method", "name"),
    BODY_FIELDS,
    ids=[f"{method.upper()} {path} {name}" for path, method, name in BODY_FIELDS],
)
def test_hostile_body_fields_get_an_answer_and_a_refusal_writes_nothing(
    template, method, name, staff_api, path_ids
):
    path = _path(template, path_ids)
    properties = _body_properties(dict(SCHEMA["paths"][template][method]))
    valid = {field: _valid_value(field, spec) for field, spec in properties.items()}
    for label, raw in HOSTILE_JSON.items():
        fields = {field: json.dumps(value) for field, value in valid.items()} | {name: raw}
        body = "{" + ", ".join(f"{json.dumps(f)}: {v}" for f, v in fields.items()) + "}"
        before = _state()
        response = staff_api.generic(method.upper(), path, body, content_type="application/json")
        _assert_answered(response, context=(name, label))
        if response.status_code >= 400:
            assert _state() == before, (name, label)


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE_BODIES = {
    "malformed": ("{not json", "application/json"),
    "truncated": ('{"question": "x', "application/json"),
    "list": ('["question"]', "application/json"),
    "null": ("null", "application/json"),
    "number": ("42", "application/json"),
    "deeply_nested": (_deep_json(100_000), "application/json"),
    "nested_field": ('{"question": ' + _deep_json(100_000) + "}", "application/json"),
    "invalid_utf8": (b'{"question": "\xff\xfe"}', "application/json"),
    "three_megabytes": (json.dumps({"question": "x" * 3_000_000}), "application/json"),
    "plain_text": ("question=x", "text/plain"),
    "xml": ("<question>x</question>", "application/xml"),
    "form_with_nul": ("question=a%00b&target=default", "application/x-www-form-urlencoded"),
    "broken_multipart": ("--x\r\nbroken", "multipart/form-data; boundary=x"),
    "multipart_no_boundary": ("x", "multipart/form-data"),
    "empty": ("", "application/json"),
}


@pytest.mark.parametrize(
    ("template", "method", "operation"),
    [op for op in OPERATIONS if op[1] == "post"],
    ids=[i for i, op in zip(OPERATION_IDS, OPERATIONS, strict=True) if op[1] == "post"],
)
def test_malformed_bodies_are_json_4xx_and_write_nothing(
    template, method, operation, staff_api, path_ids
):
    path = _path(template, path_ids)
    for label, (body, content_type) in HOSTILE_BODIES.items():
        before = _state()
        response = staff_api.generic("POST", path, body, content_type=content_type)
        _assert_answered(response, context=label)
        if response.status_code >= 400:
            assert _state() == before, label


def test_a_deeply_nested_body_is_a_400_parse_error(staff_api):
    """The JSON decoder's RecursionError escaped DRF's parser (it catches ValueError): a 500."""
    response = staff_api.generic("POST", "/api/ask", _deep_json(100_000), "application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "JSON parse error - nested too deeply.",
        "detail": "parse_error",
    }


def test_a_training_item_for_an_unknown_target_names_the_target_field(staff_api):
    response = staff_api.post(
        "/api/training",
        {"kind": "documentation", "text": "users sign up", "target": "warehouse"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == {
        "target": ["Unknown target 'warehouse'; configured targets: default."]
    }
    assert not TrainingItem.objects.exists()


def test_a_rejected_decision_with_a_nul_reason_changes_nothing(staff_api, optimizations):
    proposed = optimizations[0]
    response = staff_api.post(
        f"/api/optimizations/{proposed.id}/reject/", {"reason": "no\x00"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "reason: Null characters are not allowed."
    proposed.refresh_from_db()
    assert proposed.status == OptimizationLog.Status.PROPOSED


@pytest.mark.parametrize("route", OTHER_ROUTES)
def test_routes_outside_the_api_and_admin_never_answer_5xx(route, client, staff_user):
    """Health and metrics: any method, a hostile query string; a NUL is a 400 that says so."""
    client.force_login(staff_user)
    for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"):
        response = client.generic(method, f"{route}?x={HOSTILE_QUERY['invalid_utf8']}")
        assert response.status_code < 500, (method, route, response.status_code)
        if response.status_code == 405:
            assert response["Allow"], route
    response = client.get(f"{route}?x=a%00b")
    assert response.status_code == 400
    assert response.content.decode() == "Bad request: query parameter 'x': " + (
        "Null characters are not allowed."
    )


def test_a_lone_surrogate_echoed_in_an_error_is_escaped_json(staff_api, question_log):
    """'"\\ud800" is not a valid choice.' had no UTF-8 form: rendering it was a 500."""
    response = staff_api.generic(
        "POST",
        f"/api/ask/{question_log.id}/feedback",
        '{"feedback": "\\ud800"}',
        "application/json",
    )
    assert response.status_code == 400
    assert b"\\ud800" in response.content
    assert response.json()["error"] == 'feedback: "\ud800" is not a valid choice.'
    question_log.refresh_from_db()
    assert question_log.feedback == QuestionLog.Feedback.NONE
