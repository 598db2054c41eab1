"""manage.py nlsql_train --file pairs.yaml | --schema: fill the ask-the-database memory."""

from pathlib import Path

from django.core.management.base import CommandError
from django.db import transaction

from config.commands import ProjectCommand
from nlsql.runner import QueryFailed
from nlsql.training import TrainingError, training_load_file, training_train_schema


class Command(ProjectCommand):
    help = (
        "Train ask-the-database: --schema reads the target's catalog into one DDL item per "
        "table (replacing the previous ones); --file loads question/sql and documentation "
        "entries from a YAML list, each query planned on the target first. All or nothing."
    )

    interrupted = "its transaction was rolled back, nothing was stored."

    def add_arguments(self, parser):
        parser.add_argument("--file", help="YAML list of {question, sql} or {documentation}.")
        parser.add_argument("--schema", action="store_true", help="Train on the target's schema.")
        parser.add_argument("--target", default="default", help="Target database name.")

    def handle(self, *args, **options):
        path, target = options["file"], options["target"]
        if path is None and not options["schema"]:
            raise CommandError("Nothing to do: give --schema, --file PAIRS.yaml or both.")
        if path is not None and not path.strip():
            raise CommandError("--file needs the path of a YAML file.")
        done = []
        try:
            # Both or neither: a file that fails leaves the previous schema items in place.
            with transaction.atomic():
                if options["schema"]:
                    count = training_train_schema(target=target)
                    done.append(f"Trained {count} tables of target {target!r}.")
                if path is not None:
                    count = training_load_file(path=Path(path), target=target)
                    done.append(f"Loaded {count} entries from {path}.")
        except (TrainingError, QueryFailed) as exc:
            raise CommandError(f"{exc} Nothing was stored.") from None
        self.stdout.write("\n".join(done))
