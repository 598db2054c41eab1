"""manage.py nlsql_train --file pairs.yaml | --schema: fill the ask-the-database memory."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from nlsql.runner import QueryFailed
from nlsql.training import TrainingError, training_load_file, training_train_schema


class Command(BaseCommand):
    help = (
        "Train ask-the-database: --schema reads the target's catalog into one DDL item per "
        "table (replacing the previous ones); --file loads question/sql and documentation "
        "entries from a YAML list, all or nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--file", type=Path, help="YAML list of {question, sql} or {documentation}."
        )
        parser.add_argument("--schema", action="store_true", help="Train on the target's schema.")
        parser.add_argument("--target", default="default", help="Target database name.")

    def handle(self, *args, **options):
        if not options["file"] and not options["schema"]:
            raise CommandError("Nothing to do: give --schema, --file PAIRS.yaml or both.")
        try:
            if options["schema"]:
                count = training_train_schema(target=options["target"])
                self.stdout.write(f"Trained {count} tables of target {options['target']!r}.")
            if options["file"]:
                count = training_load_file(path=options["file"], target=options["target"])
                self.stdout.write(f"Loaded {count} entries from {options['file']}.")
        except (TrainingError, QueryFailed) as exc:
            raise CommandError(str(exc)) from None
