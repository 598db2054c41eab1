"""Ask the database offline: POST /api/ask answered from a trained pair, through a live server.

The demo schema with a little demo data (so the SQL returns rows), trained like `make demo`
does (the schema, then demo/nlsql_pairs.yaml through nlsql's training service). A staff
user's token asks, over real HTTP, a gunicorn server started on this benchmark's database
with no LLM (LLM_PROVIDER empty): the seed's question "Show me top 10 active users" and
paraphrases of it. Every answer must be ok, from the trained pair, with that pair's SQL and
rows; anything else fails the run.

Two series, interleaved so drift hits both alike:
- fresh: a question text the server has not seen, so the embedding model runs (the
  embedding cache is keyed by the exact text; the variants differ only in doubled spaces,
  which the tokenizer ignores, so every variant means exactly the same);
- repeated: the same texts again (the embedding comes from the process's cache).
ask_offline_p50_ms is the fresh series (the stricter); both are reported.
"""

import http.client
import json
import sys
import time

from _common import ROOT, bench_database, emit, live_server, log, median, percentile

USERS = 500
LOGS = 10_000
SEED_QUESTION = "Show me top 10 active users"
PARAPHRASES = (
    SEED_QUESTION,
    "show me the top 10 most active users",
    "Who are the 10 most active users?",
    "top 10 active users",
    "List the ten most active users",
    "Which 10 users are the most active?",
)
WARMUP_PER_QUESTION = 3
REPEAT = 40  # per question and series


def spaced(question: str, variant: int) -> str:
    """The same words, with 1 to 4 spaces in each gap (`variant`'s base-4 digits): a
    distinct text that the tokenizer reads exactly like the question."""
    words = question.split(" ")
    if variant >= 4 ** (len(words) - 1):
        raise ValueError(f"only {4 ** (len(words) - 1)} spacing variants of {question!r}")
    out = words[0]
    for word in words[1:]:
        variant, digit = divmod(variant, 4)
        out += " " * (1 + digit) + word
    return out


def post_ask(port: int, token: str, question: str) -> tuple[float, dict]:
    """One request on a new connection (the sync worker closes it): seconds and the JSON."""
    body = json.dumps({"question": question})
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/api/ask", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"POST /api/ask {question!r}: HTTP {response.status}: {payload[:500]!r}")
    return seconds, json.loads(payload)


def check_answer(question: str, answer: dict, *, sql: str, rows: int) -> None:
    """Ok, from the trained pair, with its SQL, returning the demo's rows: else fail."""
    problems = []
    if answer.get("status") != "ok":
        problems.append(f"status {answer.get('status')!r}")
    if answer.get("source") != "trained":
        problems.append(f"source {answer.get('source')!r}")
    if answer.get("sql") != sql:
        problems.append(f"sql {answer.get('sql')!r}")
    if f"trained question {SEED_QUESTION!r}" not in answer.get("reason", ""):
        problems.append(f"reason {answer.get('reason')!r}")
    if answer.get("row_count") != rows:
        problems.append(f"row_count {answer.get('row_count')!r} (expected {rows})")
    if problems:
        raise RuntimeError(f"answer to {question!r} is not the trained pair's: {problems}")


def sql_execution_ms(sql: str) -> float:
    """The trained SQL's own execution time on this data (EXPLAIN ANALYZE, median of 10)."""
    from django.db import connection

    times = []
    with connection.cursor() as cursor:
        for _ in range(10):
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
            times.append(cursor.fetchone()[0][0]["Execution Time"])
    return median(times)


def main() -> None:
    with bench_database("bench_ask") as database_url:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from demo.seeding import demo_seed
        from nlsql.guard import sql_check
        from nlsql.models import QuestionLog, TrainingItem
        from nlsql.training import training_load_file, training_train_schema

        demo_seed(users=USERS, logs=LOGS, seed=0)
        tables = training_train_schema()
        entries = training_load_file(path=ROOT / "demo" / "nlsql_pairs.yaml")
        pair = TrainingItem.objects.get(kind=TrainingItem.Kind.QUESTION_SQL, question=SEED_QUESTION)
        expected_sql = sql_check(pair.sql).sql
        log(f"seeded {USERS} users, {LOGS} logs; trained {tables} tables, {entries} entries")
        staff = get_user_model().objects.create_user(
            username="bench_ask", password=None, is_staff=True
        )
        token = Token.objects.create(user=staff).key

        with live_server(database_url, GUNICORN_WORKERS="1", GUNICORN_THREADS="1") as port:
            for question in PARAPHRASES:  # model load, first connections, caches
                for _ in range(WARMUP_PER_QUESTION):
                    _, answer = post_ask(port, token, question)
                    check_answer(question, answer, sql=expected_sql, rows=10)
            log(f"warm: {len(PARAPHRASES)} questions x {WARMUP_PER_QUESTION}")

            fresh: list[float] = []
            repeated: list[float] = []
            service_ms: list[float] = []
            for run in range(REPEAT):
                for question in PARAPHRASES:
                    text = spaced(question, run + 1)  # +1: variant 0 was the warm-up text
                    for series, asked in ((fresh, text), (repeated, question)):
                        seconds, answer = post_ask(port, token, asked)
                        check_answer(asked, answer, sql=expected_sql, rows=10)
                        series.append(seconds * 1000)
                        service_ms.append(answer["duration_ms"])
                if (run + 1) % 10 == 0:
                    log(
                        f"run {run + 1}/{REPEAT}: fresh p50 {percentile(fresh, 0.5):.1f} ms, "
                        f"repeated p50 {percentile(repeated, 0.5):.1f} ms"
                    )

        sql_ms = sql_execution_ms(expected_sql)
        logged = QuestionLog.objects.filter(status="ok", source="trained").count()
        asked = len(PARAPHRASES) * (WARMUP_PER_QUESTION + 2 * REPEAT)
        if logged != asked:
            raise RuntimeError(f"{asked} questions asked, {logged} logged as ok/trained")
        emit(
            {
                "ask_offline_p50_ms": percentile(fresh, 0.5),
                "ask_offline_p90_ms": percentile(fresh, 0.9),
                "ask_offline_repeated_p50_ms": percentile(repeated, 0.5),
                "ask_offline_repeated_p90_ms": percentile(repeated, 0.9),
                "ask_offline_service_p50_ms": percentile(service_ms, 0.5),
                "ask_offline_sql_execution_ms": sql_ms,
                "ask_offline_requests": len(fresh) + len(repeated),
                "ask_offline_note": (
                    "POST /api/ask with a staff token over real HTTP to a live gunicorn "
                    "(docker/gunicorn.conf.py, 1 worker, 1 thread, new connection per request), "
                    f"LLM_PROVIDER empty; demo schema with {USERS} users and {LOGS} logs, trained "
                    "on the schema and demo/nlsql_pairs.yaml; the seed's question and "
                    f"{len(PARAPHRASES) - 1} paraphrases, {REPEAT} times each, after "
                    f"{WARMUP_PER_QUESTION} warm-ups each. p50 of questions new to the server "
                    "(embedding computed); ask_offline_repeated_*: the same texts again "
                    "(embedding cached); service_p50: the service's own duration_ms; "
                    "sql_execution_ms: the trained SQL alone (EXPLAIN ANALYZE)"
                ),
                "ask_offline_client": "live gunicorn server, http.client (real HTTP)",
            }
        )


if __name__ == "__main__":
    sys.exit(main())
