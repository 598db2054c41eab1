"""A fleet of 20 audit targets, audited by the weekly task through Redis on real workers.

Each target is a small database of its own in the private cluster (orders with 40,000
rows, primary key only) with its own slow workload run into pg_stat_statements before
every weekly run (three query shapes on columns that differ from target to target). The
broker is a redis-server of this benchmark's own on a free port, configured like
docker-compose.yml's (snapshots, so queued audits outlive a restart). Workers are real
`celery worker` processes (prefork, one pool process each), on this benchmark's database.

Runs, each the weekly task (dbarchitect.tasks.audit_weekly_task) sent through the broker
and fanned out by a worker to one audit task per target:
1. one worker, then two (fresh workers; a first run warms them, the second is timed):
   every audit succeeds; the two-worker run must be >= 1.6x faster
   (`fleet_speedup_2_workers`); audits per hour from the two-worker run;
2. two audits of every target queued back to back (a manual run during the weekly one),
   taken side by side by the two workers, so the advisory lock decides: from the audits'
   start and finish times, no two audits of one target that ran overlap, every refused one
   says the lock refused it, and every target is audited;
3. faults: one target's database dropped before the run, one worker's pool process
   SIGKILLed mid-audit, the broker restarted mid-run: those two audits end failed with
   the reason and nothing recorded, all others succeed;
4. the next weekly run (the dropped database made again): every target audited again.
Any failed check exits non-zero.
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    PGSS_RESET_SQL,
    ROOT,
    admin_execute,
    bench_database,
    database_url_for,
    emit,
    free_port,
    log,
    median,
)

TARGETS = int(os.environ.get("BENCH_FLEET_TARGETS", "20"))
ROWS = 40_000
CALLS = 10  # per query shape and weekly run (the audit wants >= DBARCHITECT_MIN_CALLS)
SPEEDUP_GOAL = 1.6
REPEATS = 3  # timed weekly runs with one worker, and with two
RUN_TIMEOUT_S = 1800
WORKER_LOST = "its worker was lost"
LOCK_REFUSED = "is already running"

os.environ["LLM_PROVIDER"] = ""  # no LLM: the audits' own work only
os.environ["GITHUB_TOKEN"] = ""  # no pull requests
os.environ["DBARCHITECT_VERIFY"] = "on"
# Not what this measures; and with the default 50% the heap these audits read counts as 0
# bytes (tables_bytes 0 in the report), so no index would fit.
os.environ.setdefault("DBARCHITECT_INDEX_BUDGET", "none")

SCHEMA = (
    """CREATE TABLE orders (
        id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
        region text NOT NULL, email text NOT NULL, created_at timestamptz NOT NULL,
        total numeric(10, 2) NOT NULL)""",
    f"""INSERT INTO orders
        SELECT g, g % 4000, (ARRAY['new','paid','shipped','done'])[1 + g % 4],
               'r' || (g % 50), 'c' || g || '@example.com',
               timestamptz '2025-01-01' + g * interval '7 min', (g % 1000) / 10.0
        FROM generate_series(1, {ROWS}) AS g""",
    "ANALYZE orders",
)
# Each target filters on its own column of these pairs: fleets do not share one workload.
FILTERS = (("customer_id", 17), ("region", "r7"), ("status", "paid"))


def target_name(i: int) -> str:
    return f"fleet-{i:02d}"


def database_name(i: int) -> str:
    return f"bench_fleet_t{i:02d}"


def target_create(i: int) -> None:
    import psycopg
    from psycopg import sql

    name = sql.Identifier(database_name(i))
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    admin_execute(sql.SQL("CREATE DATABASE {}").format(name))
    with psycopg.connect(database_url_for(database_name(i)), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE EXTENSION hypopg")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute(PGSS_RESET_SQL)


def target_drop(i: int) -> None:
    from psycopg import sql

    admin_execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name(i)))
    )


def workload_run(i: int) -> None:
    """The target's slow shapes, CALLS times each (sequential scans of 40,000 rows)."""
    import psycopg

    column, value = FILTERS[i % len(FILTERS)]
    shapes = (
        f"SELECT * FROM orders WHERE {column} = %s ORDER BY created_at DESC LIMIT 20",
        "SELECT * FROM orders WHERE email = %s",
        "SELECT count(*) FROM orders WHERE created_at >= %s AND created_at < %s",
    )
    with psycopg.connect(database_url_for(database_name(i)), autocommit=True) as conn:
        for call in range(CALLS):
            conn.execute(shapes[0], [value]).fetchall()
            conn.execute(shapes[1], [f"c{1 + call * 37 + i}@example.com"]).fetchall()
            day = datetime(2025, 1, 1 + (call + i) % 28, tzinfo=UTC)
            conn.execute(shapes[2], [day, day + timedelta(days=1)]).fetchall()


@contextmanager
def redis_broker() -> Iterator["Broker"]:
    with tempfile.TemporaryDirectory(prefix="bench_fleet_redis_") as directory:
        broker = Broker(Path(directory), free_port())
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


class Broker:
    """A private redis-server: snapshots as in docker-compose.yml, a restart keeps its data."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--save", "60 1"),
                *("--dir", str(self.directory), "--logfile", str(self.directory / "log")),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, seconds=20, what="redis-server to answer")

    def _answers(self) -> bool:
        ping = ["redis-cli", "-p", str(self.port), "ping"]
        return subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG"

    def stop(self) -> None:
        """SIGTERM, as `docker compose restart` sends it: redis writes its snapshot first."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def wait_for(check: Callable[[], object], *, seconds: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")


class Worker:
    """One `celery worker` node with one prefork pool process, on the bench's database."""

    def __init__(self, number: int, env: dict[str, str], logs: Path) -> None:
        self.log = logs / f"worker{number}.log"
        command = [
            *(str(ROOT / ".venv" / "bin" / "celery"), "-A", "config", "worker"),
            *("--pool=prefork", "--concurrency=1", "-n", f"fleet{number}@%h"),
            *("--without-mingle", "--without-gossip", "-l", "warning"),
        ]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def pool_processes(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def rss_mb(self) -> float:
        """Resident memory of the node and its pool process (what one worker costs)."""
        total = 0
        for pid in (self.process.pid, *self.pool_processes()):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def cpu_seconds(self) -> float:
        """CPU time of the node and its pool process so far (user + system)."""
        total = 0
        for pid in (self.process.pid, *self.pool_processes()):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: finish, then exit
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def workers(count: int, env: dict[str, str], logs: Path) -> Iterator[list[Worker]]:
    started = [Worker(n, env, logs) for n in range(count)]
    try:
        # Ready when its pool process is up (the model and Django load in the node first).
        wait_for(lambda: all(w.pool_processes() for w in started), seconds=120, what="workers")
        yield started
    except BaseException:
        for worker in started:
            log(f"--- {worker.log.name}\n{worker.log.read_text()[-3000:]}")
        raise
    finally:
        for worker in started:
            worker.stop()


def weekly_send() -> list[str]:
    """The weekly task through the broker; the ids of the audits it queued."""
    from dbarchitect.tasks import audit_weekly_task

    return audit_weekly_task.apply_async().get(timeout=120)


def pairs_send() -> list[str]:
    """Two audits of every target back to back (a manual run during the weekly one)."""
    from dbarchitect.services import audit_queue

    return [str(audit_queue(target=target_name(i))) for i in range(TARGETS) for _ in (1, 2)]


def audits_run(send: Callable[[], list[str]] = weekly_send, during=None) -> dict:
    """Queue audits with `send`, run `during` (if any), wait for every one to end.
    Returns the audits and the seconds from sending to the last one's end."""
    from dbarchitect.models import AuditRun

    started = time.monotonic()
    audit_ids = send()
    if during is not None:
        during(audit_ids)

    def ended():
        audits = list(AuditRun.objects.filter(id__in=audit_ids).select_related("target"))
        done = [a for a in audits if a.status != AuditRun.Status.RUNNING]
        return audits if len(done) == len(audit_ids) else None

    audits = wait_for(ended, seconds=RUN_TIMEOUT_S, what="the run's audits", every=0.1)
    return {"audits": audits, "seconds": time.monotonic() - started}


def phase_medians(audits) -> dict[str, float]:
    """Median seconds of each audit phase (collect, advise, verify, ...) over the audits."""
    phases = {name for audit in audits for name in audit.phase_seconds}
    return {
        name: median([a.phase_seconds.get(name, 0.0) for a in audits]) for name in sorted(phases)
    }


def busy_share(audits, workers: int) -> float:
    """How much of the run's span the workers spent in audits (1.0: never idle)."""
    first = min(a.started_at for a in audits)
    last = max(a.finished_at for a in audits)
    busy = sum((a.finished_at - a.started_at).total_seconds() for a in audits)
    return busy / (workers * (last - first).total_seconds())


def check_all_succeeded(run: dict, what: str) -> None:
    failed = [(a.target.name, a.error) for a in run["audits"] if a.status != "succeeded"]
    names = {a.target.name for a in run["audits"]}
    if failed or len(names) != TARGETS:
        raise RuntimeError(f"{what}: {len(names)} targets audited, failed: {failed}")
    empty = [a.target.name for a in run["audits"] if a.recommendations_count == 0]
    if empty:
        raise RuntimeError(f"{what}: no recommendation for {empty}: the workload was not seen")


def overlaps(audits) -> list[tuple[str, str, str]]:
    """Pairs of audits of one target that ran (not refused) at the same time."""
    ran = sorted(
        (a for a in audits if LOCK_REFUSED not in a.error),
        key=lambda a: (a.target_id, a.started_at),
    )
    return [
        (first.target.name, str(first.id), str(second.id))
        for first, second in itertools.pairwise(ran)
        if first.target_id == second.target_id and second.started_at < first.finished_at
    ]


def nothing_recorded(audit) -> bool:
    from dbarchitect.models import QuerySnapshot
    from optimizations.models import OptimizationLog

    return not (
        QuerySnapshot.objects.filter(audit_id=audit.id).exists()
        or OptimizationLog.objects.filter(audit_id=audit.id).exists()
    )


def prepare_run(*, skip: int | None = None) -> None:
    """Each target's workload again, and the memory emptied: every run finds and verifies
    the same recommendations (a repeat would be dropped as known, a cheaper audit)."""
    from optimizations.models import OptimizationLog

    OptimizationLog.objects.all().delete()
    for i in range(TARGETS):
        if i != skip:
            workload_run(i)


def cpu_times() -> tuple[int, int]:
    """The machine's (idle, total) CPU ticks so far (/proc/stat)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks[:8])  # idle + iowait; guest time is in user


def idle_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How much of the machine's CPU was idle between two cpu_times(): with none idle, a
    second worker can only take CPU from the first (and from anything else running)."""
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def timed_runs(running: list[Worker]) -> tuple[dict, dict[int, list[dict]]]:
    """On warm workers, weekly runs alternately with the second worker's queue consumer off
    (one worker) and on (two), REPEATS of each: the machine's other load moves both alike.
    The first run, on both fresh workers, warms them (each pool process loads the embedding
    model in its first audit). Every audit of every run must succeed."""
    from config.celery_app import app

    second = [f"fleet{len(running) - 1}@{socket.gethostname()}"]
    prepare_run()
    first = audits_run()
    check_all_succeeded(first, "first run")
    timed: dict[int, list[dict]] = {1: [], 2: []}
    for _ in range(REPEATS):
        for count in (1, 2):
            if count == 1:
                app.control.cancel_consumer("celery", destination=second, reply=True)
            else:
                app.control.add_consumer("celery", destination=second, reply=True)
            prepare_run()
            before, worker_cpu = cpu_times(), sum(w.cpu_seconds() for w in running)
            run = audits_run()
            run["machine_idle_share"] = idle_share(before, cpu_times())
            # The workers' own CPU per second of audit: the rest is PostgreSQL's, or waiting.
            worker_cpu = sum(w.cpu_seconds() for w in running) - worker_cpu
            busy = sum((a.finished_at - a.started_at).total_seconds() for a in run["audits"])
            run["worker_cpu_share"] = worker_cpu / busy
            check_all_succeeded(run, f"{count} worker(s)")
            timed[count].append(run)
            log(f"{count} worker(s): {run['seconds']:.1f} s for {TARGETS} audits")
    return first, timed


def main() -> None:
    load_at_start = os.getloadavg()
    with ExitStack() as stack:
        broker = stack.enter_context(redis_broker())
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_fleet_")))
        targets = ",".join(
            f"{target_name(i)}={database_url_for(database_name(i))}" for i in range(TARGETS)
        )
        os.environ.update(REDIS_URL=broker.url, DBARCHITECT_TARGETS=targets)
        for i in range(TARGETS):
            target_create(i)
        stack.callback(lambda: [target_drop(i) for i in range(TARGETS)])
        database_url = stack.enter_context(bench_database("bench_fleet"))
        env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
        env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"

        from dbarchitect.models import Target
        from dbarchitect.targets import target_sync

        target_sync()
        Target.objects.filter(name="default").update(enabled=False)  # the fleet only
        Target.objects.exclude(name="default").update(allow_verify=True)
        log(f"{TARGETS} targets of {ROWS:,} rows; broker on port {broker.port}")

        with workers(2, env, logs) as running:
            first, timed = timed_runs(running)
            rss = [worker.rss_mb() for worker in running]

            # Two audits of every target back to back, taken side by side by the workers.
            prepare_run()
            doubled = audits_run(pairs_send)
            refused = [a for a in doubled["audits"] if a.status != "succeeded"]
            wrong = [a.error for a in refused if LOCK_REFUSED not in a.error]
            overlapping = overlaps(doubled["audits"])
            audited = {a.target.name for a in doubled["audits"] if a.status == "succeeded"}
            if wrong or overlapping or len(audited) != TARGETS:
                raise RuntimeError(f"lock: overlaps {overlapping}, errors {wrong}, {audited}")
            log(f"two audits of each target at once: {len(refused)} refused by the lock")

            # Faults: a target gone, a pool process killed mid-audit, the broker restarted.
            stopped = TARGETS - 1
            target_drop(stopped)
            prepare_run(skip=stopped)

            def faults(audit_ids: list[str]) -> None:
                from dbarchitect.models import AuditRun

                def both_busy():
                    return AuditRun.objects.filter(id__in=audit_ids, status="running").count() == 2

                wait_for(both_busy, seconds=300, what="two audits running", every=0.05)
                victim = running[0].pool_processes()[0]
                os.kill(victim, signal.SIGKILL)
                log(f"killed pool process {victim} mid-audit")

                def some_done():
                    return (
                        AuditRun.objects.filter(id__in=audit_ids).exclude(status="running").count()
                        >= TARGETS // 2
                    )

                wait_for(some_done, seconds=600, what="half the audits")
                broker.stop()
                time.sleep(2)
                broker.start()
                log("broker restarted")

            faulty = audits_run(during=faults)
            failed = {a.target.name: a for a in faulty["audits"] if a.status != "succeeded"}
            lost = [a for a in failed.values() if WORKER_LOST in a.error]
            unreachable = failed.get(target_name(stopped))
            others = set(failed) - {target_name(stopped), *(a.target.name for a in lost)}
            if len(lost) != 1 or unreachable is None or others or len(faulty["audits"]) != TARGETS:
                raise RuntimeError(
                    "faults: expected one lost and one unreachable audit, got "
                    f"{ {name: a.error for name, a in failed.items()} }"
                )
            if not all(nothing_recorded(a) for a in failed.values()):
                raise RuntimeError("a failed audit left snapshots or recommendations")
            log(f"faults: lost {lost[0].target.name}; unreachable: {unreachable.error[:120]}")

            # The next weekly run: the target back, everything audited again.
            target_create(stopped)
            prepare_run()
            after = audits_run()
            check_all_succeeded(after, "the run after the faults")

        seconds = {n: [run["seconds"] for run in runs] for n, runs in timed.items()}
        one, two = median(seconds[1]), median(seconds[2])
        speedup = one / two
        if speedup < SPEEDUP_GOAL:
            log(f"two workers only {speedup:.2f}x faster than one (goal {SPEEDUP_GOAL}x)")
        audits = {n: [a for run in runs for a in run["audits"]] for n, runs in timed.items()}
        emit(
            {
                "fleet_targets": TARGETS,
                "fleet_1_worker_s": one,
                "fleet_2_workers_s": two,
                "fleet_runs_s": {str(n): runs for n, runs in seconds.items()},
                "fleet_speedup_2_workers": speedup,
                "fleet_audits_per_hour_1_worker": TARGETS / one * 3600,
                "fleet_audits_per_hour": TARGETS / two * 3600,
                "fleet_first_run_s": first["seconds"],
                "fleet_lock_refused": len(refused),
                "fleet_lock_overlaps": len(overlapping),
                "fleet_lock_audits": len(doubled["audits"]),
                "fleet_fault_failed": {name: a.error for name, a in failed.items()},
                "fleet_fault_others_succeeded": TARGETS - len(failed),
                "fleet_after_faults_succeeded": len(after["audits"]),
                "fleet_worker_rss_mb": max(rss),
                "fleet_audit_phase_median_s": phase_medians(audits[2]),
                "fleet_audit_median_s": {
                    str(n): median([(a.finished_at - a.started_at).total_seconds() for a in runs])
                    for n, runs in audits.items()
                },
                "fleet_machine_idle_share": {
                    str(n): median([run["machine_idle_share"] for run in runs])
                    for n, runs in timed.items()
                },
                "fleet_worker_cpu_share": {
                    str(n): median([run["worker_cpu_share"] for run in runs])
                    for n, runs in timed.items()
                },
                "fleet_workers_busy_share": {
                    str(n): median([busy_share(run["audits"], n) for run in runs])
                    for n, runs in timed.items()
                },
                "fleet_load_average_at_start": list(load_at_start),
                "fleet_load_average_at_end": list(os.getloadavg()),
                "fleet_note": (
                    f"{TARGETS} targets (own databases, {ROWS:,} rows, 3 slow shapes x {CALLS} "
                    "calls each before every run, verification on); the weekly task through a "
                    "private redis-server to `celery worker` nodes of one prefork process each; "
                    "seconds from sending the weekly task to the last audit's end, median of "
                    f"{REPEATS} runs with the second worker's consumer off and on in turn (after "
                    "a first run that warms both); audits per hour from the 2-worker runs; "
                    "fault run: one target's database dropped, one "
                    "pool process SIGKILLed while 2 audits ran, the broker restarted (SIGTERM, "
                    "snapshot) once half the audits ended; worker_rss_mb: node + pool process"
                ),
            }
        )


if __name__ == "__main__":
    sys.exit(main())
