"""Approve, reject and apply from the admin: buttons and list actions, through the services."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.urls import reverse

from optimizations.models import OptimizationLog

from .factories import make_recommendation

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:optimizations_optimizationlog_changelist"
INDEX_NAME = "f2_admin_apply_idx"


def _url(name: str, log: OptimizationLog) -> str:
    return reverse(f"admin:optimizations_optimizationlog_{name}", args=[log.pk])


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_approve_button_approves(staff_client, staff_user):
    log = make_recommendation()
    response = staff_client.post(_url("approve", log), follow=True)
    log.refresh_from_db()
    assert (log.status, log.decided_by) == ("approved", staff_user)
    assert "1 recommendation approved." in _messages(response)


def test_reject_button_keeps_the_reason(staff_client):
    log = make_recommendation()
    staff_client.post(_url("reject", log), {"reason": "the table is archived next month"})
    log.refresh_from_db()
    assert log.status == "rejected"
    assert log.details["reject_reason"] == "the table is archived next month"


def test_a_transition_that_is_not_allowed_is_reported_not_done(staff_client):
    log = make_recommendation(status=OptimizationLog.Status.REJECTED)
    response = staff_client.post(_url("approve", log), follow=True)
    log.refresh_from_db()
    assert log.status == "rejected"
    (message,) = _messages(response)
    assert "Cannot approve a recommendation that is rejected" in message


def test_decision_urls_take_post_only(staff_client):
    log = make_recommendation()
    assert staff_client.get(_url("approve", log)).status_code == 405
    assert staff_client.get(_url("reject", log)).status_code == 405


def test_apply_needs_a_superuser(staff_client):
    log = make_recommendation()
    assert staff_client.get(_url("apply", log)).status_code == 403
    assert staff_client.post(_url("apply", log)).status_code == 403
    log.refresh_from_db()
    assert log.status == "proposed"


def test_actions_approve_and_reject_the_selection(staff_client):
    first = make_recommendation(ddl="CREATE INDEX a_idx ON demo_user (email)")
    second = make_recommendation(ddl="CREATE INDEX b_idx ON demo_user (name)")
    untouched = make_recommendation(ddl="CREATE INDEX c_idx ON demo_user (created_at)")
    staff_client.post(
        reverse(CHANGELIST),
        {"action": "approve_selected", ACTION_CHECKBOX_NAME: [first.pk, second.pk]},
    )
    statuses = dict(OptimizationLog.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "approved", second.pk: "approved", untouched.pk: "proposed"}

    staff_client.post(
        reverse(CHANGELIST), {"action": "reject_selected", ACTION_CHECKBOX_NAME: [untouched.pk]}
    )
    untouched.refresh_from_db()
    assert untouched.status == "rejected"


def _action_names(client) -> list[str]:
    form = client.get(reverse(CHANGELIST)).context["action_form"]
    return [name for name, _ in form.fields["action"].choices]


def test_only_superusers_get_the_apply_action(client, staff_user, superuser):
    log = make_recommendation()
    client.force_login(staff_user)
    assert "approve_selected" in _action_names(client)
    assert "apply_selected" not in _action_names(client)
    client.post(reverse(CHANGELIST), {"action": "apply_selected", ACTION_CHECKBOX_NAME: [log.pk]})
    client.post(
        reverse(CHANGELIST),
        {"action": "apply_selected", ACTION_CHECKBOX_NAME: [log.pk], "confirm": "yes"},
    )
    log.refresh_from_db()
    assert log.status == "proposed"

    client.force_login(superuser)
    assert "apply_selected" in _action_names(client)


def _index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{name}"])
        return cursor.fetchone()[0]


@pytest.fixture
def drop_built_indexes():
    """The applied indexes are real: drop them so later tests see the table as it was."""
    yield
    with connection.cursor() as cursor:
        for name in (INDEX_NAME, f"{INDEX_NAME}_2"):
            cursor.execute("DROP INDEX IF EXISTS public." + connection.ops.quote_name(name))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("drop_built_indexes")
def test_superuser_applies_after_a_confirmation_page(super_client):
    log = make_recommendation(ddl=f"CREATE INDEX {INDEX_NAME} ON demo_user (email)")

    confirm = super_client.get(_url("apply", log))
    assert confirm.status_code == 200
    assert f"CREATE INDEX {INDEX_NAME} ON demo_user (email)" in confirm.content.decode()
    assert not _index_exists(INDEX_NAME)  # the GET only asks

    response = super_client.post(_url("apply", log), follow=True)
    log.refresh_from_db()
    assert log.status == "applied" and log.applied_at is not None
    assert _index_exists(INDEX_NAME)
    # Eager Celery (the test settings) built it in the request, and the message says so.
    (message,) = _messages(response)
    assert message.startswith(
        f"{log.ddl}: Applied at once (CELERY_TASK_ALWAYS_EAGER is on): Index {INDEX_NAME} "
        "built concurrently"
    )
    # The change page shows the result of the last apply.
    page = super_client.get(_url("change", log)).content.decode()
    assert 'id="dba-apply-result"' in page and f"Index {INDEX_NAME} built concurrently" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("drop_built_indexes")
def test_apply_action_confirms_then_builds(super_client):
    log = make_recommendation(ddl=f"CREATE INDEX {INDEX_NAME}_2 ON demo_user (created_at)")
    data = {"action": "apply_selected", ACTION_CHECKBOX_NAME: [log.pk]}

    page = super_client.post(reverse(CHANGELIST), data)
    assert page.status_code == 200
    assert 'id="dba-confirm-apply"' in page.content.decode()
    log.refresh_from_db()
    assert log.status == "proposed"

    super_client.post(reverse(CHANGELIST), {**data, "confirm": "yes", "index": 0})
    log.refresh_from_db()
    assert log.status == "applied"
    assert _index_exists(f"{INDEX_NAME}_2")


def test_buttons_offer_only_the_transitions_allowed_from_the_status(super_client):
    def buttons(log: OptimizationLog) -> set[str]:
        html = super_client.get(_url("change", log)).content.decode()
        return {name for name in ("approve", "reject", "apply") if f'id="dba-{name}"' in html}

    assert buttons(make_recommendation()) == {"approve", "reject", "apply"}
    approved = make_recommendation(
        ddl="CREATE INDEX d_idx ON demo_user (email)", status=OptimizationLog.Status.APPROVED
    )
    assert buttons(approved) == {"reject", "apply"}
    drop = make_recommendation(
        ddl="DROP INDEX CONCURRENTLY IF EXISTS public.e_idx", kind=OptimizationLog.Kind.DROP_INDEX
    )
    assert buttons(drop) == {"approve", "reject"}  # decisions applies indexes only
    rejected = make_recommendation(
        ddl="CREATE INDEX f_idx ON demo_user (email)", status=OptimizationLog.Status.REJECTED
    )
    assert buttons(rejected) == set()


def test_a_queued_apply_shows_on_the_page_and_refuses_a_second_apply(super_client):
    """No worker here (the test's transaction never commits): the apply stays queued."""
    log = make_recommendation(ddl="CREATE INDEX g_idx ON demo_user (email)")
    response = super_client.post(_url("apply", log), follow=True)
    (message,) = _messages(response)
    assert message == (
        f"{log.ddl}: Apply of g_idx queued: a Celery worker builds it (CREATE INDEX "
        "CONCURRENTLY); the recommendation shows its progress."
    )
    log.refresh_from_db()
    assert log.status == "applying"
    html = response.content.decode()
    assert 'id="dba-apply-progress"' in html and "Applying: queued" in html
    assert "waiting for a Celery worker" in html
    assert '<meta http-equiv="refresh" content="5">' in html
    assert 'id="dba-apply"' not in html and 'id="dba-reject"' not in html

    again = super_client.post(_url("apply", log), follow=True)
    (refused,) = _messages(again)
    assert "This recommendation is already being applied. Queued at" in refused


def test_applying_is_a_status_filter_of_the_list(super_client):
    make_recommendation(ddl="CREATE INDEX h_idx ON demo_user (email)", status="applying")
    make_recommendation(ddl="CREATE INDEX i_idx ON demo_user (email)")
    response = super_client.get(reverse(CHANGELIST), {"status__exact": "applying"})
    assert response.context["cl"].result_count == 1
    assert "?status__exact=applying" in response.content.decode()
