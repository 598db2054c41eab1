"""Run every benchmark, collect their JSON, write bench/results/latest.json and the table in
docs/BENCHMARKS.md. Exits non-zero when a benchmark fails; a required figure that no
benchmark produced is listed as "not measured".

Each bench/*.py (except this one and _*.py) runs in its own process with its own
database; each already reports medians over its own repeated runs. `--runs N` repeats
whole scripts and takes the median of every number (for the cheap ones: `--only`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results" / "latest.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
FINDINGS = BENCH / "FINDINGS.md"  # hand-written: what profiling found, what was changed

REQUIRED_KEYS = (
    "insert_speedup_vs_orm",
    "insert_ratio_to_raw_copy",
    "recent_logs_p50_ms",
    "recent_logs_before_index_p50_ms",
    "audit_100_queries_s",
    "similar_p50_ms",
    "similar_recall_at_5",
    "embed_texts_per_s",
    "embed_ratio_to_raw",
    "ask_offline_p50_ms",
    "audit_verify_ratio_to_builds",
    "load_list_p95_ms",
    "load_ask_p95_ms",
    "fleet_speedup_2_workers",
    "fleet_audits_per_hour",
    "advise_1000_queries_s",
)


def cpu_model() -> str:
    """The CPU's name and the flags that move these figures (machines differ between runs)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    first_cpu = info.split("\n\n")[0].splitlines()
    fields = {
        key.strip(): value.strip()
        for key, value in (line.split(":", 1) for line in first_cpu if ":" in line)
    }
    name = fields.get("model name", "unknown CPU")
    flags = set(fields.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    return f"{name}; {' '.join(flag for flag in wanted if flag in flags) or 'no AVX2'}"


@dataclass(frozen=True)
class Figure:
    """One row of the table: what is measured, against what, and the goal."""

    figure: str
    measured_key: str
    measured_unit: str
    baseline: str
    baseline_key: str | None
    ratio_key: str | None
    goal: str
    goal_key: str
    goal_op: str  # "<=" or ">="
    goal_value: float


SEED_AUDIT_TARGET_S = 120.0  # the seed's plan: "the weekly scan 15 min -> 2 min"

FIGURES = (
    Figure(
        "batch insert of 100k BehaviorLog rows via the data service",
        "insert_service_s", "s", "per-row ORM create() (extrapolated)",
        "insert_orm_create_s_extrapolated", "insert_speedup_vs_orm",
        ">= 25x faster than per-row ORM", "insert_speedup_vs_orm", ">=", 25.0,
    ),
    Figure(
        "the same insert, against raw psycopg binary COPY (the limit)",
        "insert_service_s", "s", "raw COPY", "insert_raw_copy_s", "insert_ratio_to_raw_copy",
        "<= 1.3x raw COPY", "insert_ratio_to_raw_copy", "<=", 1.3,
    ),
    Figure(
        "recent 100 logs of one user, 1M rows, through the service (p50)",
        "recent_logs_p50_ms", "ms", "before the recommended index",
        "recent_logs_before_index_p50_ms", "recent_logs_speedup",
        "p50 <= 1 ms", "recent_logs_p50_ms", "<=", 1.0,
    ),
    Figure(
        "one audit of 100 slow query shapes, no LLM: collect, analyze, advise",
        "audit_100_queries_s", "s", "the seed's 2-minute target", None, None,
        "<= 10 s", "audit_100_queries_s", "<=", 10.0,
    ),
    Figure(
        "the advise phase for 1,000 distinct slow statements over 50 tables",
        "advise_1000_queries_s", "s", "-", None, None,
        "<= 30 s", "advise_1000_queries_s", "<=", 30.0,
    ),
    Figure(
        "the same audit's verification",
        "phase_verify_s", "s", "building the same indexes alone", "builds_alone_s",
        "audit_verify_ratio_to_builds", "<= 1.5x the builds", "audit_verify_ratio_to_builds",
        "<=", 1.5,
    ),
    Figure(
        "similar-optimization search, top 5, 100k rows (p50)",
        "similar_p50_ms", "ms", "exact search (no index), for recall", None, None,
        "p50 <= 5 ms", "similar_p50_ms", "<=", 5.0,
    ),
    Figure(
        "similar-optimization search: recall@5 against exact search",
        "similar_recall_at_5", "", "exact search (no index)", None, None,
        ">= 0.95", "similar_recall_at_5", ">=", 0.95,
    ),
    Figure(
        "embeddings of 1,000 query texts through the product's service",
        "embed_texts_per_s", "texts/s", "the model's own batched encode",
        "embed_raw_texts_per_s", "embed_ratio_to_raw",
        ">= 0.9x the model's encode", "embed_ratio_to_raw", ">=", 0.9,
    ),
    Figure(
        "the same embeddings, against one text at a time",
        "embed_texts_per_s", "texts/s", "one generate_embedding() per text",
        "embed_one_at_a_time_texts_per_s", "embed_speedup_vs_one_at_a_time",
        ">= 2.5x one at a time", "embed_speedup_vs_one_at_a_time", ">=", 2.5,
    ),
    Figure(
        "ask the database, offline answer from a trained pair, through the API (p50)",
        "ask_offline_p50_ms", "ms", "-", None, None,
        "p50 <= 50 ms", "ask_offline_p50_ms", "<=", 50.0,
    ),
    Figure(
        "GET /api/optimizations/ (1,000 stored), 10 clients on gunicorn's 2 workers (p95)",
        "load_list_p95_ms", "ms", "one request at a time (median)", "load_list_single_ms",
        None, "p95 <= 150 ms", "load_list_p95_ms", "<=", 150.0,
    ),
    Figure(
        "POST /api/ask (a trained question), 10 clients on gunicorn's 2 workers (p95)",
        "load_ask_p95_ms", "ms", "one request at a time (median)", "load_ask_single_ms",
        None, "p95 <= 300 ms", "load_ask_p95_ms", "<=", 300.0,
    ),
    Figure(
        "the weekly audit of 20 targets on 2 worker processes, through Redis",
        "fleet_2_workers_s", "s", "1 worker process", "fleet_1_worker_s",
        "fleet_speedup_2_workers", ">= 1.6x faster than 1 worker", "fleet_speedup_2_workers",
        ">=", 1.6,
    ),
)  # fmt: skip


@dataclass
class ScriptRun:
    name: str
    ok: bool
    seconds: float
    results: dict
    error: str = ""


def scripts(only: list[str] | None) -> list[Path]:
    found = sorted(
        path
        for path in BENCH.glob("*.py")
        if not path.name.startswith("_") and path.name != Path(__file__).name
    )
    if only:
        unknown = set(only) - {path.stem for path in found}
        if unknown:
            raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))}")
        found = [path for path in found if path.stem in only]
    return found


def run_script(path: Path) -> ScriptRun:
    """One benchmark in its own process; its last stdout line is its JSON."""
    print(f"== {path.name}", file=sys.stderr, flush=True)
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, str(path)],
        cwd=BENCH,
        stdout=subprocess.PIPE,
        stderr=None,  # progress goes straight to the terminal
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seconds = time.monotonic() - started
    lines = [line for line in process.stdout.splitlines() if line.strip()]
    if process.returncode != 0:
        return ScriptRun(path.stem, False, seconds, {}, f"exit code {process.returncode}")
    try:
        results = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return ScriptRun(path.stem, False, seconds, {}, "no JSON on the last line of stdout")
    print(f"   {path.name}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return ScriptRun(path.stem, True, seconds, results)


def median_of_runs(runs: list[ScriptRun]) -> ScriptRun:
    """Numbers: the median over the runs; anything else: the first run's value."""
    merged = dict(runs[0].results)
    for key, value in runs[0].results.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = statistics.median(run.results[key] for run in runs)
    return ScriptRun(runs[0].name, True, sum(run.seconds for run in runs), merged)


def goal_met(figure: Figure, results: dict) -> bool | None:
    value = results.get(figure.goal_key)
    if not isinstance(value, int | float):
        return None
    return value <= figure.goal_value if figure.goal_op == "<=" else value >= figure.goal_value


def _number(value, unit: str = "") -> str:
    if not isinstance(value, int | float):
        return "not measured"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(results: dict) -> list[str]:
    lines = [
        "| figure | measured | baseline (same run) | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for figure in FIGURES:
        baseline = figure.baseline
        if figure.baseline_key:
            baseline += f": {_number(results.get(figure.baseline_key), figure.measured_unit)}"
        elif figure.measured_key == "audit_100_queries_s":
            baseline += f": {SEED_AUDIT_TARGET_S:.0f} s"
        ratio = results.get(figure.ratio_key) if figure.ratio_key else None
        if figure.measured_key == "audit_100_queries_s" and isinstance(
            results.get("audit_100_queries_s"), int | float
        ):
            ratio = SEED_AUDIT_TARGET_S / results["audit_100_queries_s"]
        met = {True: "yes", False: "**no**", None: "not measured"}[goal_met(figure, results)]
        lines.append(
            f"| {figure.figure} | {_number(results.get(figure.measured_key), figure.measured_unit)}"
            f" | {baseline} | {_number(ratio, 'x') if ratio is not None else '-'}"
            f" | {figure.goal} | {met} |"
        )
    return lines


def write_doc(payload: dict) -> None:
    results = payload["results"]
    notes = sorted((key, value) for key, value in results.items() if key.endswith("_note"))
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run_all.py`); the raw numbers are in "
        "`bench/results/latest.json`. Each benchmark builds its own database, measures its "
        "baseline in the same run (absolute times drift on a shared machine; ratios hold), "
        "reports medians over its repeated runs, and drops the database.",
        "",
        f"Run: {payload['generated_at']} on {payload['machine']['cpus']} CPUs "
        f"({payload['machine']['cpu_model']}), load average "
        f"{payload['machine']['load_average_at_start']} at the start.",
        "",
        *table(results),
        "",
        "## How each figure is measured",
        "",
        *(f"- `{key}`: {value}" for key, value in notes),
        "",
    ]
    if payload["failures"]:
        lines += ["## Failed in this run", ""]
        lines += [f"- `{name}`: {error}" for name, error in payload["failures"].items()]
        lines.append("")
    if payload["missing"]:
        lines += ["## Not measured in this run", ""]
        lines += [f"- `{key}`" for key in payload["missing"]]
        lines.append("")
    if FINDINGS.exists():
        lines += [FINDINGS.read_text().strip(), ""]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="Runs of each script (median).")
    parser.add_argument("--only", nargs="*", help="Only these benchmarks (file stems).")
    parser.add_argument(
        "--doc-only",
        action="store_true",
        help="Run nothing: rewrite docs/BENCHMARKS.md from bench/results/latest.json.",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.doc_only:
        write_doc(json.loads(RESULTS.read_text()))
        return 0

    load = os.getloadavg()
    runs: list[ScriptRun] = []
    for path in scripts(args.only):
        attempts = [run_script(path) for _ in range(args.runs)]
        failed = [attempt for attempt in attempts if not attempt.ok]
        runs.append(failed[0] if failed else median_of_runs(attempts))

    results: dict = {}
    for run in runs:
        results.update(run.results)
    failures = {run.name: run.error for run in runs if not run.ok}
    missing = [key for key in REQUIRED_KEYS if not isinstance(results.get(key), int | float)]
    for key in REQUIRED_KEYS:
        results.setdefault(key, None)
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "load_average_at_start": [round(x, 2) for x in load],
        },
        "scripts": {run.name: {"ok": run.ok, "seconds": round(run.seconds, 1)} for run in runs},
        "failures": failures,
        "missing": missing,
        "goals_met": {figure.goal_key: goal_met(figure, results) for figure in FIGURES},
        "results": results,
        **{key: results[key] for key in REQUIRED_KEYS},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    write_doc(payload)
    print("\n".join(table(results)))
    if missing:
        print(f"not measured (no benchmark produced them): {missing}", file=sys.stderr)
    if failures:
        print(f"FAILED: {failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
