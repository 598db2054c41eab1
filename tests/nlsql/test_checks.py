"""System checks name a risky or broken ask-the-database setup."""

import pytest

from nlsql.checks import check_nlsql_settings, check_readonly_role


def test_settings_checks_pass_by_default():
    assert check_nlsql_settings(None) == []


def test_settings_checks_name_what_is_wrong(settings):
    settings.NLSQL_ALLOWED_SCHEMAS = []
    settings.NLSQL_OFFLINE_MIN_SIMILARITY = 1.5
    assert [error.id for error in check_nlsql_settings(None)] == ["nlsql.E002", "nlsql.E003"]


@pytest.mark.django_db(databases=["default", "readonly"])
def test_deploy_check_warns_when_the_runner_role_is_a_superuser():
    # The test cluster's role is the superuser `postgres`: exactly what production must avoid.
    warnings = check_readonly_role(None)
    assert [warning.id for warning in warnings] == ["nlsql.W001"]
    assert "READONLY_DATABASE_URL" in warnings[0].hint
