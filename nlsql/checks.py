"""System checks for ask-the-database: name a risky setup before a question runs on it."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

from config.checks import numeric_setting_errors

# Limits of ask-the-database: each must allow at least one of what it counts.
NUMERIC_SETTINGS: dict[str, tuple[float | None, float | None]] = {
    name: (1, None)
    for name in (
        "NLSQL_STATEMENT_TIMEOUT_MS",  # 0 would switch the timeout off
        "NLSQL_MAX_ROWS",
        "NLSQL_MAX_QUESTION_LENGTH",
        "NLSQL_MAX_SQL_LENGTH",
        "NLSQL_CONTEXT_TOKEN_BUDGET",
        "NLSQL_RETRIEVE_LIMIT",
        "NLSQL_PAGE_SIZE",
    )
}


@register()
def check_nlsql_settings(app_configs, **kwargs):
    errors = []
    if "readonly" not in settings.DATABASES:
        errors.append(
            Error(
                'DATABASES has no "readonly" alias; ask-the-database runs its queries there.',
                hint='Add DATABASES["readonly"] (READONLY_DATABASE_URL) or mirror "default".',
                id="nlsql.E001",
            )
        )
    if not settings.NLSQL_ALLOWED_SCHEMAS:
        errors.append(
            Error(
                "NLSQL_ALLOWED_SCHEMAS is empty: no table could ever be asked about.",
                hint="The default is public.",
                id="nlsql.E002",
            )
        )
    if not 0.0 < settings.NLSQL_OFFLINE_MIN_SIMILARITY <= 1.0:
        errors.append(
            Error(
                f"NLSQL_OFFLINE_MIN_SIMILARITY={settings.NLSQL_OFFLINE_MIN_SIMILARITY} is not "
                "a cosine similarity in (0, 1].",
                id="nlsql.E003",
            )
        )
    return errors + numeric_setting_errors(NUMERIC_SETTINGS, check_id="nlsql.E004")


@register(Tags.security, Tags.database, deploy=True)
def check_readonly_role(app_configs, databases=None, **kwargs):
    """In production the runner's role should not be able to write at all."""
    if "readonly" not in settings.DATABASES:
        return []
    try:
        with connections["readonly"].cursor() as cursor:
            cursor.execute(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                "WHERE rolname = current_user"
            )
            row = cursor.fetchone()
    except DatabaseError as exc:
        return [Warning(f'database alias "readonly" is not reachable: {exc}', id="nlsql.W002")]
    if row and row[0]:
        return [
            Warning(
                'Ask-the-database connects ("readonly" alias) as a role that is superuser or '
                "may create roles or databases.",
                hint="Set READONLY_DATABASE_URL to a role with SELECT only; the guard and the "
                "READ ONLY transaction are the other two layers.",
                id="nlsql.W001",
            )
        ]
    return []
