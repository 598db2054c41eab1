"""The OpenAPI schema: valid, complete, served to staff, with the Swagger UI offline; and
schemathesis against it: no input makes any endpoint answer 500."""

import pytest
import schemathesis
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.generation import GenerationMode

pytestmark = [
    pytest.mark.django_db,
    # Tests run Celery eagerly; the API still asks the result backend about unknown ids.
    pytest.mark.filterwarnings("ignore:Results are not stored in backend:RuntimeWarning"),
]

OPERATIONS = {
    ("/api/optimizations/", "get"),
    ("/api/optimizations/{optimization_id}/", "get"),
    ("/api/optimizations/similar/", "get"),
    ("/api/optimizations/{optimization_id}/approve/", "post"),
    ("/api/optimizations/{optimization_id}/reject/", "post"),
    ("/api/optimizations/{optimization_id}/apply/", "post"),
    ("/api/audits/", "get"),
    ("/api/audits/", "post"),
    ("/api/audits/{audit_id}/", "get"),
    ("/api/ask", "post"),
    ("/api/explain", "post"),
}


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["openapi"].startswith("3.")
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations >= OPERATIONS


def test_every_operation_documents_its_errors(staff_api):
    schema = staff_api.get("/api/schema/?format=json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert {"401", "403"} <= set(responses), (method, path)
            error = responses["401"]["content"]["application/json"]["schema"]["$ref"]
            assert error == "#/components/schemas/Error", (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"error", "detail"}
    apply = schema["paths"]["/api/optimizations/{optimization_id}/apply/"]["post"]
    assert "409" in apply["responses"]


def test_swagger_ui_is_served_from_local_static_files(staff_client):
    response = staff_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/api/schema/" in html
    # The bundle ships in a Python package (collectstatic serves it): no internet needed.
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


@pytest.fixture
def staff_token(staff_user) -> str:
    return Token.objects.create(user=staff_user).key


@pytest.fixture
def wsgi_app():
    """The project's WSGI app, kept from closing the test's connection after each request
    (what Django's own test client does too)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app, staff_token, optimizations):
    """The schema as the API serves it to a staff token, bound to the WSGI app."""
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", wsgi_app, headers={"Authorization": f"Token {staff_token}"}
    )


# Examples per operation and generation mode: 11 operations x 2 modes stay well under a minute.
EXAMPLES = 10


def _strategies(operation, known_ids: dict[str, str]):
    """Valid and invalid cases; for an operation on one item, also cases on a real item
    (random ids only ever reach the 404)."""
    yield operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    yield operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    names = {parameter.name for parameter in operation.path_parameters}
    ids = {name: known_ids[name] for name in names if name in known_ids}
    if ids and len(ids) == len(names):
        yield operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=ids)


def test_no_input_gets_a_server_error(api_schema, staff_token, optimizations, audit):
    """Schemathesis cases for every operation, as staff: none gets a 5xx."""
    auth = {"Authorization": f"Token {staff_token}"}
    known_ids = {"optimization_id": str(optimizations[0].id), "audit_id": str(audit.id)}
    checked = set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for strategy in _strategies(operation, known_ids):

            @given(case=strategy)
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def no_server_error(case):
                response = case.call(headers=auth)
                assert response.status_code < 500, (
                    case.method,
                    case.formatted_path,
                    case.query,
                    case.body,
                    response.text[:300],
                )

            no_server_error()
        checked.add((operation.path, operation.method.lower()))
    assert checked >= OPERATIONS  # and any endpoint added since is fuzzed too
