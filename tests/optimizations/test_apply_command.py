"""manage.py apply_recommendation: queue the build, or build here with --wait."""

import io

import pytest
from django.core.management import CommandError, call_command

from optimizations.applying import apply_job

from .apply_fixtures import TABLE, index_valid, recommendation


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("apply_recommendation", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_bad_input_is_a_command_error(staff_user, superuser):
    log = recommendation("CREATE INDEX dec_orders_cmd ON dec_orders (customer_id)")
    with pytest.raises(CommandError, match="No recommendation with id 'nope'"):
        _run("nope", "--user", "root")
    with pytest.raises(CommandError, match="'staff' is not a superuser"):
        _run(str(log.pk), "--user", "staff")
    with pytest.raises(CommandError, match="'ghost' is not a superuser"):
        _run(str(log.pk), "--user", "ghost")
    rewrite = recommendation("Use keyset pagination", kind="rewrite")
    with pytest.raises(CommandError, match="not an index to build"):
        _run(str(rewrite.pk), "--user", "root")
    log.refresh_from_db()
    assert log.status == "proposed"


@pytest.mark.django_db
def test_without_wait_the_build_is_queued(superuser):
    """No worker here (the test's transaction never commits): the apply stays queued."""
    log = recommendation("CREATE INDEX dec_orders_cmd ON dec_orders (customer_id)")
    assert _run(str(log.pk), "--user", "root").startswith("Apply of dec_orders_cmd queued")
    log.refresh_from_db()
    assert log.status == "applying" and apply_job(log)["queued_by"] == "root"


@pytest.mark.django_db(transaction=True)
def test_wait_builds_here_and_a_failure_is_a_command_error(orders, superuser):
    log = recommendation(f"CREATE INDEX dec_orders_cmd ON {TABLE} (customer_id)")
    out = _run(str(log.pk), "--user", "root", "--wait")
    assert out.startswith("Applied in this process: Index dec_orders_cmd built concurrently")
    assert index_valid("dec_orders_cmd") is True
    log.refresh_from_db()
    assert log.status == "applied"

    unique = recommendation(f"CREATE UNIQUE INDEX dec_orders_cmd_uq ON {TABLE} (customer_id)")
    with pytest.raises(CommandError, match="could not create unique index"):
        _run(str(unique.pk), "--user", "root", "--wait")
    unique.refresh_from_db()
    assert unique.status == "proposed" and "could not create" in unique.details["apply_error"]
