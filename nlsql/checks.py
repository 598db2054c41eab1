"""System checks for ask-the-database: name a risky setup before a question runs on it."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections


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
    return errors


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
