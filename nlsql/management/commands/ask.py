"""manage.py ask "QUESTION" | --sql "SQL": the same guard and runner as the admin page."""

import json

from django.core.management.base import CommandError

from config.commands import ProjectCommand
from nlsql.ask import InvalidInput, question_ask, sql_run

EXIT_CODES = {"ok": 0, "error": 1, "refused": 2}


class Command(ProjectCommand):
    help = (
        "Ask the database a question in plain language (or run one SELECT with --sql) through "
        "the SQL guard and the read-only runner. Exit code 0: ok, 2: refused, 1: error."
    )

    interrupted = "the query was cancelled and nothing was logged."

    def add_arguments(self, parser):
        parser.add_argument("question", nargs="?", help="The question, in plain language.")
        parser.add_argument("--sql", help="Run this SQL instead of asking (no LLM involved).")
        parser.add_argument("--target", default="default", help="Target database name.")
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document (sql, status, rows...)."
        )
        parser.add_argument(
            "--no-run", action="store_true", help="Generate and check the SQL, do not run it."
        )

    def handle(self, *args, **options):
        question, sql = options["question"], options["sql"]
        if (question is None) == (sql is None):
            raise CommandError('Give either a QUESTION or --sql "SELECT ...", not both.')
        try:
            if sql is not None:
                result = sql_run(sql=sql, target=options["target"])
            else:
                result = question_ask(
                    question=question, target=options["target"], run=not options["no_run"]
                )
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        else:
            self._print(result)
        if result.status != "ok":
            raise SystemExit(EXIT_CODES[result.status])

    def _print(self, result) -> None:
        if result.sql:
            self.stdout.write(result.sql)
        if result.status == "refused":
            self.stderr.write(f"Refused: {result.reason}")
            return
        if result.status == "error":
            self.stderr.write(f"Error: {result.error or result.reason}")
            return
        if result.reason:
            self.stdout.write(f"-- {result.reason}")
        self.stdout.write(" | ".join(result.columns))
        for row in result.rows:
            self.stdout.write(" | ".join("" if value is None else str(value) for value in row))
        more = " (truncated)" if result.truncated else ""
        self.stdout.write(f"({result.row_count} rows{more}, {result.duration_ms} ms)")
