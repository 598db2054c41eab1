import sys
import time

from django.core.management.base import CommandError
from django.db import transaction
from tqdm import tqdm

from config.commands import ProjectCommand
from demo.seeding import demo_clear, demo_has_data, demo_seed

# Sizes a demo can use: users are built in memory (about 1 kB each) and logs go in at
# roughly 60,000 rows a second, so more than this is a mistyped number, not a demo.
MAX_USERS = 1_000_000
MAX_LOGS = 100_000_000


class Command(ProjectCommand):
    help = (
        "Fill the demo tables (demo_user, demo_behavior_log) with realistic, skewed data: "
        "a few very active users, a long tail of event types, one rare type, 90 days."
    )

    interrupted = "its transaction was rolled back, nothing was written."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=20_000, help="Users to create.")
        parser.add_argument("--logs", type=int, default=1_000_000, help="Behaviour logs.")
        parser.add_argument(
            "--seed",
            type=int,
            default=0,
            help="Random seed (0 or more): the same seed gives the same data.",
        )
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the demo tables already hold data (for `make demo`).",
        )
        group.add_argument(
            "--replace", action="store_true", help="Empty the demo tables first, then seed."
        )

    def handle(self, *args, users, logs, seed, if_empty, replace, **options):
        if users < 1:
            raise CommandError("--users must be at least 1.")
        if users > MAX_USERS:
            raise CommandError(f"--users must be at most {MAX_USERS:,}.")
        if logs < 0:
            raise CommandError("--logs must not be negative.")
        if logs > MAX_LOGS:
            raise CommandError(f"--logs must be at most {MAX_LOGS:,} (the demo needs ~1,000,000).")
        if seed < 0:
            raise CommandError("--seed must not be negative.")
        if demo_has_data() and not replace:
            if if_empty:
                self.stdout.write("The demo tables already hold data: nothing to do.")
                return
            raise CommandError(
                "The demo tables already hold data. Use --if-empty to keep them or "
                "--replace to start again."
            )
        started = time.monotonic()
        with (
            transaction.atomic(),
            tqdm(
                total=users + logs,
                unit=" rows",
                unit_scale=True,
                desc="seed_demo",
                file=sys.stderr,
                disable=options["verbosity"] == 0,
            ) as bar,
        ):
            if replace:
                demo_clear()
            result = demo_seed(users=users, logs=logs, seed=seed, progress=bar.update)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.users} users and {result.logs} behaviour logs "
                f"in {time.monotonic() - started:.1f} s."
            )
        )
