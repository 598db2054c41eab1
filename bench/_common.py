"""What every benchmark shares: its own throw-away database, timing, JSON out.

Each bench script is its own process: it creates a database, points Django at it through
DATABASE_URL *before* django.setup(), migrates, measures, prints one JSON object on stdout
and drops the database. Any failed step raises: the script exits non-zero, no number.
"""

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5544/dbarchitect"


def database_url_for(database: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_URL))
    return parts._replace(path=f"/{database}").geturl()


def admin_execute(statement) -> None:
    import psycopg

    with psycopg.connect(database_url_for("postgres"), autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def bench_database(name: str, *, migrate: bool = True) -> Iterator[str]:
    """A fresh database `name` for this run, Django set up on it, dropped afterwards."""
    from psycopg import sql

    if not name.startswith("bench_"):
        raise ValueError("bench databases are named bench_*: never touch another database")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    admin_execute(drop)
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    os.environ["DATABASE_URL"] = database_url_for(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    try:
        import django

        django.setup()
        if migrate:
            from django.core.management import call_command

            call_command("migrate", verbosity=0, interactive=False)
        yield os.environ["DATABASE_URL"]
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        admin_execute(drop)


# Forget what ran in the current database so far (its load, not its workload): an audit
# weighs every row a table was written against each index it could recommend there.
PGSS_RESET_SQL = (
    "SELECT pg_stat_statements_reset(0, oid, 0) FROM pg_database WHERE datname = current_database()"
)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call takes (perf_counter)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def _rounded(value):
    if isinstance(value, float):
        # Four decimals, or three significant digits for what is smaller than that.
        return round(value, 4) if abs(value) >= 0.01 else float(f"{value:.3g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def emit(result: dict) -> None:
    """The benchmark's one line of output: JSON, numbers rounded for reading."""
    print(json.dumps(_rounded(result), sort_keys=True), flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def django_only() -> None:
    """Django set up without touching any database (for benchmarks of pure computation)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()


def query_texts(count: int, *, seed: int = 0) -> list[str]:
    """Varied, realistic SQL statements and index recommendations to embed."""
    import random

    rng = random.Random(seed)
    tables = {
        "demo_behavior_log": ["user_id", "event_type", "timestamp", "metadata"],
        "demo_user": ["email", "created_at", "name"],
        "orders": ["customer_id", "status", "created_at", "total_cents", "region"],
        "invoices": ["account_id", "due_date", "paid_at", "currency", "amount"],
        "sessions": ["user_id", "expires_at", "ip_address", "device"],
        "products": ["sku", "category_id", "price", "updated_at", "brand"],
        "payments": ["order_id", "provider", "captured_at", "state"],
        "lessons": ["course_id", "position", "published_at", "author_id"],
    }
    shapes = [
        "SELECT * FROM {t} WHERE {a} = $1 ORDER BY {b} DESC LIMIT {n}",
        "SELECT count(*) FROM {t} WHERE {a} >= $1 AND {a} < $2",
        "SELECT {a}, count(*) FROM {t} GROUP BY {a} ORDER BY 2 DESC",
        "SELECT {a}, {b} FROM {t} WHERE lower({a}) = lower($1)",
        "UPDATE {t} SET {b} = $1 WHERE {a} = $2",
        "SELECT * FROM {t} WHERE {a} LIKE $1 ORDER BY {a} LIMIT {n}",
        "SELECT * FROM {t} WHERE {a} IN ($1, $2, $3) AND {b} IS NULL",
        "DELETE FROM {t} WHERE {b} < now() - interval '{n} days'",
    ]
    advice = [
        "CREATE INDEX ON {t} ({a}, {b} DESC) -- equality then sort",
        "CREATE INDEX ON {t} (lower({a})) -- expression index for case-insensitive lookups",
        "CREATE INDEX ON {t} ({a} varchar_pattern_ops) -- LIKE prefix search",
        "CREATE INDEX ON {t} USING gin ({a}) -- containment queries",
        "Rewrite OFFSET pagination on {t} as keyset pagination over ({b}, id)",
        "CREATE INDEX ON {t} ({b}) WHERE {a} IS NOT NULL -- partial index",
    ]
    texts = []
    for _ in range(count):
        table = rng.choice(list(tables))
        a, b = rng.sample(tables[table], 2)
        n = rng.choice([10, 20, 50, 100, 500])
        query = rng.choice(shapes).format(t=table, a=a, b=b, n=n)
        fix = rng.choice(advice).format(t=table, a=a, b=b)
        texts.append(f"{query}\n{fix}")
    return texts


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVER_START_TIMEOUT_S = 60


@contextmanager
def live_server(database_url: str, **env: str) -> Iterator[int]:
    """gunicorn with the product's config (docker/gunicorn.conf.py) on this benchmark's
    database with no LLM, `env` added (e.g. GUNICORN_WORKERS); yields its port once it
    listens. Its error log is printed when the block fails."""
    import subprocess
    import tempfile

    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DEBUG": "false",
        "LLM_PROVIDER": "",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        **env,
    }
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        *("-c", "docker/gunicorn.conf.py", "--no-control-socket"),
    ]
    with tempfile.NamedTemporaryFile(prefix="bench_gunicorn_", suffix=".log") as errors:
        # stdout is the access log
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=errors
        )
        try:
            _wait_listening(process, port)
            yield port
        except BaseException:
            errors.flush()
            log(Path(errors.name).read_text(encoding="utf-8", errors="replace")[-4000:])
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(process, port: int) -> None:
    import socket

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not listen within {SERVER_START_TIMEOUT_S} s")
