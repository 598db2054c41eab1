from django.core.management.base import CommandError

from config.commands import ProjectCommand
from demo.workload import DEFAULT_REPEAT, NoDemoData, workload_run

# Enough for any statistics; more is a mistyped number that would run for days.
MAX_REPEAT = 10_000


class Command(ProjectCommand):
    help = (
        "Run the demo's query workload (several shapes slow without the right index) often "
        "enough to show in pg_stat_statements, then print each shape's mean time."
    )

    interrupted = "it only reads; the queries that ran are in pg_stat_statements."

    def add_arguments(self, parser):
        parser.add_argument(
            "--repeat",
            type=int,
            default=DEFAULT_REPEAT,
            help=f"Calls per query shape (default {DEFAULT_REPEAT}; the audit wants >= 5).",
        )
        parser.add_argument("--seed", type=int, default=0, help="Random seed for parameters.")

    def handle(self, *args, repeat, seed, **options):
        if repeat < 1:
            raise CommandError("--repeat must be at least 1.")
        if repeat > MAX_REPEAT:
            raise CommandError(f"--repeat must be at most {MAX_REPEAT:,}.")
        try:
            results = workload_run(repeat=repeat, seed=seed)
        except NoDemoData as exc:
            raise CommandError(str(exc)) from exc
        width = max(len(result.name) for result in results)
        self.stdout.write(f"{'query':<{width}}  {'calls':>5}  {'mean ms':>9}")
        for result in results:
            self.stdout.write(f"{result.name:<{width}}  {result.calls:>5}  {result.mean_ms:>9.2f}")
            if options["verbosity"] > 1:
                self.stdout.write(f"    {result.sql}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Ran {len(results)} query shapes x {repeat}: they are in pg_stat_statements "
                "for the next audit."
            )
        )
