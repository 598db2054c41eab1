"""The API under load: GET /api/optimizations/ and POST /api/ask, 10 clients at once.

The demo schema with a little demo data, its workload run into pg_stat_statements and one
real audit of it (no LLM, no verification), so the stored recommendations carry real plans,
details and an audit report; they are copied to 1,000 recommendations (varied query texts,
over several audits). Trained like `make demo` (the schema, then demo/nlsql_pairs.yaml).

gunicorn runs as docker/gunicorn.conf.py configures it (2 workers and its thread count) on
this benchmark's database, with no LLM. First, in the same run, the baseline: one request
at a time (a single warm request). Then 10 client threads, each on its own kept-alive
connection, send 1,000 list requests each, then 1,000 asks each (the seed's trained
question and paraphrases). Every answer is checked: 200, a full page of 50 of the 1,000
rows; for ask ok, from the trained pair, its SQL and rows. Any error fails the run.

Goals on the 2-core machine: list p95 <= 150 ms, ask p95 <= 300 ms (`load_*_p95_ms`).
The load average (os.getloadavg) is reported: other work on the machine moves these.
"""

import http.client
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from _common import (
    PGSS_RESET_SQL,
    ROOT,
    bench_database,
    emit,
    live_server,
    log,
    median,
    percentile,
)

USERS = 500
LOGS = 10_000
RECOMMENDATIONS = 1_000
AUDITS = 10  # the recommendations are spread over this many audits
CLIENTS = 10
REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_LOAD_REQUESTS", "1000"))
SINGLE_REQUESTS = 50  # the one-at-a-time baseline, per endpoint
PAGE_SIZE = 50  # REST_FRAMEWORK's PAGE_SIZE
SEED_QUESTION = "Show me top 10 active users"
QUESTIONS = (
    SEED_QUESTION,
    "show me the top 10 most active users",
    "Who are the 10 most active users?",
    "top 10 active users",
)
LIST_GOAL_P95_MS = 150.0
ASK_GOAL_P95_MS = 300.0


class Client:
    """One client: a kept-alive HTTP connection, opened again when the server closes it."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: dict | None = None) -> tuple[float, int, bytes]:
        """Seconds, status and body of one request."""
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed the kept-alive connection between two requests.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                started = time.perf_counter()
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return time.perf_counter() - started, response.status, data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def check_list(status: int, data: bytes) -> str:
    """'' when the page is right, else what is wrong."""
    if status != 200:
        return f"HTTP {status}: {data[:300]!r}"
    page = json.loads(data)
    if page.get("count") != RECOMMENDATIONS or len(page.get("results", [])) != PAGE_SIZE:
        return f"count {page.get('count')}, {len(page.get('results', []))} results"
    return ""


def ask_checker(expected_sql: str) -> Callable[[int, bytes], str]:
    def check(status: int, data: bytes) -> str:
        if status != 200:
            return f"HTTP {status}: {data[:300]!r}"
        answer = json.loads(data)
        wrong = {
            key: answer.get(key)
            for key, want in (("status", "ok"), ("source", "trained"), ("sql", expected_sql))
            if answer.get(key) != want
        }
        if answer.get("row_count") != 10:
            wrong["row_count"] = answer.get("row_count")
        return f"not the trained pair's answer: {wrong}" if wrong else ""

    return check


@dataclass
class Series:
    """The latencies of one endpoint's requests and the errors seen."""

    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str) -> None:
        with self.lock:
            self.seconds.append(seconds)
            if error:
                self.errors.append(error)


Request = Callable[[Client, int], tuple[float, int, bytes]]


def list_request(client: Client, i: int) -> tuple[float, int, bytes]:
    # Pages 1 to 20 in turn: every row is read, not one page from a cache.
    return client.send("GET", f"/api/optimizations/?page={1 + i % 20}")


def ask_request(client: Client, i: int) -> tuple[float, int, bytes]:
    return client.send("POST", "/api/ask", {"question": QUESTIONS[i % len(QUESTIONS)]})


def single(port: int, token: str, request: Request, check) -> list[float]:
    """The baseline: one request at a time, SINGLE_REQUESTS of them (after the warm-up)."""
    client = Client(port, token)
    times = []
    try:
        for i in range(SINGLE_REQUESTS):
            seconds, status, data = request(client, i)
            if error := check(status, data):
                raise RuntimeError(f"single request {i}: {error}")
            times.append(seconds)
    finally:
        client.close()
    return times


def under_load(port: int, token: str, request: Request, check) -> dict:
    """CLIENTS threads, REQUESTS_PER_CLIENT requests each, all at once."""
    series = Series()
    start = threading.Barrier(CLIENTS + 1)

    def run(offset: int) -> None:
        client = Client(port, token)
        start.wait()
        try:
            for i in range(REQUESTS_PER_CLIENT):
                try:
                    seconds, status, data = request(client, offset + i)
                except OSError as exc:
                    series.add(0.0, f"{type(exc).__name__}: {exc}")
                    continue
                series.add(seconds, check(status, data))
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(n * 7,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    load_before = os.getloadavg()
    start.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if series.errors:
        raise RuntimeError(f"{len(series.errors)} errors under load, first: {series.errors[0]}")
    ms = [s * 1000 for s in series.seconds]
    return {
        "requests": len(ms),
        "errors": len(series.errors),
        "p50_ms": percentile(ms, 0.5),
        "p95_ms": percentile(ms, 0.95),
        "p99_ms": percentile(ms, 0.99),
        "requests_per_s": len(ms) / elapsed,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
    }


def _copy(instance, **changes):
    """An unsaved copy of a model instance: every column but the id, `changes` applied."""
    model = type(instance)
    columns = {
        f.attname: getattr(instance, f.attname)
        for f in model._meta.concrete_fields
        if not f.primary_key
    }
    return model(**{**columns, **changes})


def store_recommendations(staff) -> None:
    """The real audit's recommendations, copied to RECOMMENDATIONS rows over AUDITS audits."""
    from django.utils import timezone

    from dbarchitect.models import AuditRun
    from optimizations.models import OptimizationLog

    real = list(OptimizationLog.objects.all())
    if not real:
        raise RuntimeError("the audit recommended nothing: no rows to copy")
    audit = AuditRun.objects.get()
    audits = [audit, *AuditRun.objects.bulk_create(_copy(audit) for _ in range(AUDITS - 1))]
    copies = []
    for i in range(RECOMMENDATIONS - len(real)):
        row = real[i % len(real)]
        decided = i % 3 == 0
        copies.append(
            _copy(
                row,
                query_text=f"{row.query_text} /* copy {i} */",
                fingerprint=f"{row.fingerprint[:40]}-{i}",
                audit_id=audits[i % AUDITS].pk,
                decided_by=staff if decided else None,
                decided_at=timezone.now() if decided else None,
            )
        )
    OptimizationLog.objects.bulk_create(copies, batch_size=500)


def main() -> None:
    os.environ["LLM_PROVIDER"] = ""
    os.environ["DBARCHITECT_VERIFY"] = "off"
    # Small demo data: its queries take about a millisecond, the default threshold; these
    # make the audit that fills the list find them however fast the machine is.
    os.environ.setdefault("DBARCHITECT_MIN_MEAN_MS", "0.05")
    os.environ.setdefault("DBARCHITECT_MIN_TOTAL_SHARE", "0.001")
    os.environ.setdefault("DBARCHITECT_MIN_TABLE_ROWS", "1000")
    with bench_database("bench_load_api") as database_url:
        from django.contrib.auth import get_user_model
        from django.db import connection
        from rest_framework.authtoken.models import Token

        from dbarchitect.agent import run_audit
        from demo.seeding import demo_seed
        from demo.workload import workload_run
        from nlsql.guard import sql_check
        from nlsql.models import TrainingItem
        from nlsql.training import training_load_file, training_train_schema
        from optimizations.models import OptimizationLog

        demo_seed(users=USERS, logs=LOGS, seed=0)
        with connection.cursor() as cursor:
            cursor.execute(PGSS_RESET_SQL)
        workload_run(repeat=10)
        audit = run_audit(target="default", verify=False)
        if audit.status != "succeeded":
            raise RuntimeError(f"the demo audit failed: {audit.error}")
        staff = get_user_model().objects.create_user(
            username="bench_load", password=None, is_staff=True
        )
        store_recommendations(staff)
        stored = OptimizationLog.objects.count()
        if stored != RECOMMENDATIONS:
            raise RuntimeError(f"{stored} recommendations stored, not {RECOMMENDATIONS}")
        training_train_schema()
        training_load_file(path=ROOT / "demo" / "nlsql_pairs.yaml")
        pair = TrainingItem.objects.get(kind=TrainingItem.Kind.QUESTION_SQL, question=SEED_QUESTION)
        expected_sql = sql_check(pair.sql).sql
        token = Token.objects.create(user=staff).key
        log(f"{stored} recommendations over {AUDITS} audits; trained")

        check_ask = ask_checker(expected_sql)
        with live_server(database_url) as port:
            for _ in range(3):  # each worker loads the model, opens its connections
                single(port, token, list_request, check_list)
                single(port, token, ask_request, check_ask)
            list_single = single(port, token, list_request, check_list)
            ask_single = single(port, token, ask_request, check_ask)
            log(
                f"single: list {median(list_single) * 1000:.1f} ms, "
                f"ask {median(ask_single) * 1000:.1f} ms"
            )
            listed = under_load(port, token, list_request, check_list)
            log(f"list under load: {listed}")
            asked = under_load(port, token, ask_request, check_ask)
            log(f"ask under load: {asked}")

        results = {
            "load_list_single_ms": median(list_single) * 1000,
            "load_ask_single_ms": median(ask_single) * 1000,
            **{f"load_list_{key}": value for key, value in listed.items()},
            **{f"load_ask_{key}": value for key, value in asked.items()},
            "load_list_goal_met": listed["p95_ms"] <= LIST_GOAL_P95_MS,
            "load_ask_goal_met": asked["p95_ms"] <= ASK_GOAL_P95_MS,
            "load_note": (
                "gunicorn as docker/gunicorn.conf.py (2 workers, its threads) on a loopback "
                f"port, no LLM; {RECOMMENDATIONS} recommendations (one real audit of the demo "
                f"workload, copied over {AUDITS} audits); {CLIENTS} client threads with "
                f"kept-alive connections, {REQUESTS_PER_CLIENT} requests each: GET "
                "/api/optimizations/?page=1..20 (50 rows a page), then POST /api/ask with the "
                f"seed's trained question and {len(QUESTIONS) - 1} paraphrases, every answer "
                f"checked; single: median of {SINGLE_REQUESTS} one at a time, same server, "
                "same run. Client and server share the machine's 2 cores; load averages "
                "before/after each series"
            ),
        }
        emit(results)


if __name__ == "__main__":
    sys.exit(main())
