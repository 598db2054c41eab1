"""Every admin page against hostile input: never a 5xx, a message where the input is refused.

The routes come from the URL resolver and the models from the admin site's registry, so a new
ModelAdmin or admin view is swept too: changelists (search, filters, ordering, pages, date
hierarchy), object pages with malformed ids, actions with malformed selections, the custom
views (dashboard, reports, run, decisions, ask), for every kind of user.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client, RequestFactory
from django.urls import reverse

from dbarchitect.models import QuerySnapshot
from nlsql.models import QuestionLog, TrainingItem
from optimizations.models import OptimizationLog
from tests.routes import HOSTILE_PATH_IDS, route_templates

from .factories import make_audit, make_recommendation

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Results are not stored in backend:RuntimeWarning"),
]

ADMIN_ROUTES = [route for route in route_templates() if route.startswith("/admin/")]
REGISTRY = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
REGISTRY_IDS = [model._meta.label for model, _ in REGISTRY]
MODELS = {(model._meta.app_label, model._meta.model_name): model for model, _ in REGISTRY}

NUL = "a\x00b"
# Query-string values, already percent-encoded; a NUL is refused before any view.
HOSTILE_QUERY = {
    "invalid_utf8": "%ED%A0%80%FF",
    "huge_int": str(10**30),
    "negative": "-1",
    "float": "1.5",
    "superscript_digit": "%C2%B2",
    "long_text": "x" * 5_000,
    "empty": "",
    "bad_date": "2024-13-45",
    "rtl_emoji": "%E2%80%AE%F0%9F%92%A5",
    "like_wildcards": "%25_%5C",
    "sql_injection": "%27%3B+DROP+TABLE+demo_user%3B+--",
}
HOSTILE_FORM_VALUES = {
    "nul": NUL,
    "long_text": "x" * 100_000,
    "superscript_digit": "\u00b2",
    "rtl_emoji": "\u202e\U0001f4a5 \u05e9\u05dc\u05d5\u05dd",
    "sql_injection": "'; DROP TABLE demo_user; --",
}
# The query parameters the admin's views read: changelists, the ask page, the dashboard.
QUERY_NAMES = ["q", "o", "p", "e", "all", "log", "page", "audit", "term", "next"]
# The form fields of the project's admin views, and the ones Django's own pages read.
FORM_FIELDS = ["question", "target", "run", "reason", "feedback", "verify", "confirm", "kind",
               "text", "sql", "name", "enabled", "allow_verify", "action", "index",
               ACTION_CHECKBOX_NAME, "select_across", "username", "password"]  # fmt: skip


# Every path parameter an admin route takes: the project's and Django's.
PARAMETERS = ("object_id", "content_type_id", "id", "audit_id", "pk", "log_id")
# Where the id does not matter (the answer comes before any lookup).
ANY_IDS = {
    **dict.fromkeys(PARAMETERS, "1"),
    **dict.fromkeys(("audit_id", "pk"), "00000000-0000-0000-0000-000000000001"),
}


@pytest.fixture
def objects(superuser) -> dict[str, object]:
    """One object of every model the admin shows, and the ids the custom routes take."""
    audit = make_audit(slow=[(11, "SELECT * FROM demo_user WHERE email = $1", 12.0)])
    log = make_recommendation(audit=audit)
    question = QuestionLog.objects.create(
        user=superuser,
        question="how many users are there?",
        sql="SELECT count(*) FROM demo_user",
        status=QuestionLog.Status.OK,
    )
    TrainingItem.objects.create(kind=TrainingItem.Kind.DOCUMENTATION, text="users sign up")
    return {"audit_id": str(audit.pk), "pk": str(log.pk), "log_id": str(question.pk)}


def _real_ids(route: str, objects: dict[str, object]) -> dict[str, str] | None:
    """Real values for the route's parameters; None when the route's model has no object."""
    ids = dict(objects)
    if "{object_id}" in route:
        app_label, model_name = route.split("/")[2:4]
        model = MODELS.get((app_label, model_name))
        first = model._default_manager.first() if model else None
        if first is None:
            return None
        ids["object_id"] = str(first.pk)
    if "{content_type_id}" in route or "{id}" in route:
        return None
    return ids


def _assert_answered(response, *, context) -> None:
    assert response.status_code < 500, (context, response.status_code)
    if response.status_code == 400:
        assert response.content.strip(), context


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_every_admin_route_answers_hostile_input_without_a_5xx(route, super_client, objects):
    """GET with hostile query strings and POST with hostile forms, on real and malformed ids."""
    real = _real_ids(route, objects)
    id_sets = [real] if real else []
    if "{" in route:  # every form value on a real object, a NUL form on the malformed ids
        id_sets += [{name: value for name in PARAMETERS} for value in HOSTILE_PATH_IDS.values()]
    for number, ids in enumerate(id_sets or [{}]):
        path = route.format(**ids)
        # On the real object every hostile value in every parameter the views read.
        values = HOSTILE_QUERY if number == 0 else {"long_text": HOSTILE_QUERY["long_text"]}
        for label, value in values.items():
            query = "&".join(f"{name}={value}" for name in QUERY_NAMES)
            response = super_client.get(f"{path}?{query}")
            _assert_answered(response, context=(path, "GET", label))
        forms = HOSTILE_FORM_VALUES if number == 0 else {"nul": NUL}
        for label, value in forms.items():
            response = super_client.post(path, {field: value for field in FORM_FIELDS})
            _assert_answered(response, context=(path, "POST", label))


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_a_nul_in_the_query_string_is_a_400_that_says_so(route, super_client):
    response = super_client.get(route.format(**ANY_IDS), {"q": NUL})
    assert response.status_code == 400, route
    assert response.content.decode() == "Bad request: query parameter 'q': " + (
        "Null characters are not allowed."
    )


@pytest.mark.parametrize("route", ADMIN_ROUTES)
def test_anonymous_and_plain_users_are_sent_to_the_login_page(route, client, django_user_model):
    login = reverse("admin:login")
    path = route.format(**ANY_IDS)
    plain = Client()
    plain.force_login(django_user_model.objects.create_user(username="plain", password="x-123"))
    for caller in (client, plain):
        for method in ("get", "post"):
            response = getattr(caller, method)(path, {"question": "\u00b2", "reason": "x"})
            assert response.status_code < 500, (path, method)
            if path.rstrip("/") not in {"/admin/login", "/admin/logout", "/admin/jsi18n"}:
                assert response.status_code in (302, 405), (path, method, response.status_code)
                if response.status_code == 302:
                    assert response["Location"].startswith(login), (path, method)


FILTER_VALUES = ["nul", "invalid_utf8", "huge_int", "float", "bad_date", "superscript_digit"]


def _filter_parameters(model_admin, user) -> list[str]:
    """The query parameters the changelist's filters and date hierarchy read."""
    request = RequestFactory().get("/")
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    names = [name for spec in changelist.filter_specs for name in spec.expected_parameters()]
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    return names


@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=REGISTRY_IDS)
def test_changelist_filters_search_ordering_and_pages_survive_hostile_values(
    model, model_admin, super_client, superuser, objects
):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    names = [*_filter_parameters(model_admin, superuser), "q", "o", "p", "e", "no_such_field",
             "pk__in", "id__gt", "all"]  # fmt: skip
    for name in names:
        for label in FILTER_VALUES:
            value = {**HOSTILE_QUERY, "nul": "a%00b"}[label]
            response = super_client.get(f"{url}?{name}={value}")
            _assert_answered(response, context=(url, name, label))
            if label == "nul":
                assert response.status_code == 400, (url, name)
    # Everything at once, repeated.
    query = "&".join(f"{name}=1&{name}=-" for name in names)
    _assert_answered(super_client.get(f"{url}?{query}"), context=(url, "all"))


@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=REGISTRY_IDS)
def test_actions_on_a_malformed_selection_are_refused_with_a_message(
    model, model_admin, super_client, superuser, objects
):
    """Django filtered pk__in=<posted ids> as they came: "not-an-id" for a UUID or an integer
    primary key was a 500."""
    request = RequestFactory().get("/")
    request.user = superuser
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    before = model._default_manager.count()
    for action in model_admin.get_actions(request):
        for label, value in {"not_an_id": "not-an-id", "nul": NUL, "float": "1.5"}.items():
            response = super_client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [value]})
            assert response.status_code == 302, (url, action, label, response.status_code)
            assert any("Not a valid id" in message for message in _messages(response)), (
                url, action, label,
            )  # fmt: skip
    assert model._default_manager.count() == before


def test_a_malformed_selection_among_valid_ones_changes_nothing(super_client, objects):
    url = reverse("admin:optimizations_optimizationlog_changelist")
    response = super_client.post(
        url, {"action": "approve_selected", ACTION_CHECKBOX_NAME: [objects["pk"], "nope"]}
    )
    assert response.status_code == 302
    assert _messages(response) == [
        "Not a valid id: 'nope'. Select the items in the list; nothing was changed."
    ]
    assert OptimizationLog.objects.get(pk=objects["pk"]).status == OptimizationLog.Status.PROPOSED


def test_a_queryid_search_ignores_digits_int_cannot_read(super_client, objects):
    """ "²" is a digit to str.isdigit() but int() refuses it: the search was a 500."""
    url = reverse("admin:dbarchitect_querysnapshot_changelist")
    assert super_client.get(url, {"q": "\u00b2"}).status_code == 200
    found = super_client.get(url, {"q": "11"})
    assert found.context["cl"].result_count == QuerySnapshot.objects.filter(queryid=11).count()
    assert super_client.get(url, {"q": str(2**63)}).status_code == 200


@pytest.mark.parametrize("log", ["\u00b2", "0", "-1", str(10**30)])
def test_the_ask_page_answers_a_malformed_log_id_with_a_404(staff_client, log):
    """ "²" passed str.isdigit() and failed in int(): a 500."""
    response = staff_client.get(reverse("admin:nlsql_ask"), {"log": log, "page": "\u00b2"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (NUL, "Not rejected: reason: Null characters are not allowed."),
        ("x" * 2001, "Not rejected: reason: Ensure this value has at most 2000 characters "
                     "(it has 2001)."),
    ],
    ids=["nul", "too_long"],
)  # fmt: skip
def test_a_reject_reason_that_cannot_be_kept_is_refused_with_a_message(
    staff_client, objects, reason, message
):
    """A NUL in the reason reached the JSON column: PostgreSQL refused it, a 500."""
    url = reverse("admin:optimizations_optimizationlog_reject", args=[objects["pk"]])
    response = staff_client.post(url, {"reason": reason})
    assert response.status_code == 302
    assert _messages(response) == [message]
    log = OptimizationLog.objects.get(pk=objects["pk"])
    assert log.status == OptimizationLog.Status.PROPOSED
    assert "reject_reason" not in (log.details or {})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"question": "", "target": "default"}, "This field is required."),
        ({"question": NUL, "target": "default"}, "Null characters are not allowed."),
        ({"question": "x" * 100_000, "target": "default"}, "Ensure this value has at most"),
        ({"question": "how many users?", "target": "warehouse"}, "Select a valid choice."),
        ({"question": "how many users?", "target": NUL}, "Select a valid choice."),
    ],
    ids=["empty", "nul", "100k", "unknown_target", "nul_target"],
)
def test_the_ask_page_refuses_bad_questions_with_a_form_error(staff_client, data, error):
    response = staff_client.post(reverse("admin:nlsql_ask"), data)
    assert response.status_code == 200
    errors = [message for field in response.context["form"].errors.values() for message in field]
    assert any(message.startswith(error) for message in errors), errors
    assert not QuestionLog.objects.exists()


def test_the_ask_page_answers_an_injection_attempt_without_running_it(staff_client):
    response = staff_client.post(
        reverse("admin:nlsql_ask"),
        {"question": "'; DROP TABLE demo_user; --", "target": "default", "run": "on"},
    )
    assert response.status_code == 200
    answer = response.context["answer"]
    assert answer["status"] in {"error", "refused"}
    assert answer["reason"] or answer["error"]


@pytest.mark.parametrize("feedback", ["", NUL, "maybe", "x" * 10_000])
def test_bad_feedback_is_reported_and_not_recorded(staff_client, objects, feedback):
    url = reverse("admin:nlsql_feedback", args=[objects["log_id"]])
    response = staff_client.post(url, {"feedback": feedback})
    assert response.status_code == 302
    assert _messages(response) == ["Feedback must be 'correct' or 'wrong'."]
    assert QuestionLog.objects.get(pk=objects["log_id"]).feedback == QuestionLog.Feedback.NONE


def test_admin_posts_without_a_csrf_token_are_refused_with_a_reason(superuser, objects):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    for name, args in [
        ("admin:dbarchitect_audit_run", []),
        ("admin:optimizations_optimizationlog_reject", [objects["pk"]]),
        ("admin:optimizations_optimizationlog_apply", [objects["pk"]]),
        ("admin:nlsql_ask", []),
        ("admin:nlsql_feedback", [objects["log_id"]]),
        ("admin:optimizations_optimizationlog_changelist", []),
    ]:
        response = client.post(reverse(name, args=args), {"target": "default", "reason": "x"})
        assert response.status_code == 403, name
        assert "CSRF verification failed" in response.content.decode(), name
    assert OptimizationLog.objects.get(pk=objects["pk"]).status == OptimizationLog.Status.PROPOSED


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("admin:optimizations_optimizationlog_apply", "Only a superuser applies an index."),
        ("admin:optimizations_optimizationlog_add", "You do not have permission to do this."),
    ],
)
def test_a_forbidden_page_says_why(staff_client, objects, name, message):
    """Django's built-in 403 page dropped the reason: an empty <p></p>."""
    args = [objects["pk"]] if name.endswith("_apply") else []
    response = staff_client.get(reverse(name, args=args))
    assert response.status_code == 403
    assert f"<p>{message}</p>" in response.content.decode()
