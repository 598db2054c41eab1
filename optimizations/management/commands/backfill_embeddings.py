from django.core.management.base import CommandError

from config.commands import ProjectCommand
from optimizations.services import optimization_backfill_embeddings


class Command(ProjectCommand):
    help = "Compute the missing embeddings of stored optimizations (all-MiniLM-L6-v2, 384 dims)."

    interrupted = "the batches embedded so far are saved; run it again for the rest."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=256,
            help="Texts embedded per model call and rows updated per statement (default 256).",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        done = optimization_backfill_embeddings(batch_size=batch_size)
        self.stdout.write(f"Embedded {done} optimization(s).")
