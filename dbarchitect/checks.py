"""System checks: name what is missing before an audit fails on it."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

REQUIRED_EXTENSIONS = {
    "vector": (
        "dbarchitect.E001",
        "Run `make services` (builds pgvector) and `manage.py migrate`.",
    ),
    "hypopg": ("dbarchitect.E002", "apt-get install postgresql-15-hypopg, then migrate."),
    "pg_stat_statements": (
        "dbarchitect.E003",
        "Add pg_stat_statements to shared_preload_libraries, restart PostgreSQL, migrate.",
    ),
}


@register()
def check_settings(app_configs, **kwargs):
    from .targets import configured_targets

    errors = []
    try:
        configured_targets()
    except ImproperlyConfigured as exc:
        errors.append(
            Error(
                str(exc),
                hint="Example: DBARCHITECT_TARGETS=shop=postgres://auditor@db/shop",
                id="dbarchitect.E010",
            )
        )
    verify = settings.DBARCHITECT_VERIFY
    if verify not in ("on", "off") and not verify.startswith("database:"):
        errors.append(
            Error(
                f"DBARCHITECT_VERIFY={verify!r} is not on, off or database:<target>",
                id="dbarchitect.E011",
            )
        )
    provider = settings.LLM_PROVIDER
    if provider not in ("", "gemini", "openai"):
        errors.append(
            Error(
                f"LLM_PROVIDER={provider!r} is not gemini or openai",
                hint="Leave it empty to run without an LLM.",
                id="dbarchitect.E012",
            )
        )
    if provider == "gemini" and not settings.GEMINI_API_KEY:
        errors.append(
            Warning("LLM_PROVIDER=gemini but GEMINI_API_KEY is empty", id="dbarchitect.W013")
        )
    if provider == "openai" and not settings.OPENAI_BASE_URL:
        errors.append(
            Warning("LLM_PROVIDER=openai but OPENAI_BASE_URL is empty", id="dbarchitect.W014")
        )
    return errors


@register(Tags.database)
def check_extensions(app_configs, databases=None, **kwargs):
    errors = []
    for alias in databases or []:
        if alias != "default":
            continue
        try:
            if not _migrated(connections[alias]):
                continue  # migrate creates them; checking now would block migrate itself
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT extname FROM pg_extension")
                installed = {row[0] for row in cursor.fetchall()}
        except DatabaseError as exc:
            return [Error(f"database {alias!r} is not reachable: {exc}", id="dbarchitect.E000")]
        for name, (check_id, hint) in REQUIRED_EXTENSIONS.items():
            if name not in installed:
                errors.append(
                    Error(
                        f"extension {name} is not installed on database {alias!r}",
                        hint=hint,
                        id=check_id,
                    )
                )
    return errors


def _migrated(connection) -> bool:
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder(connection).applied_migrations()
    return ("dbarchitect", "0002_extensions_and_default_target") in applied
