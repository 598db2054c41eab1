"""What every manage.py command of the project shares."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection


class ProjectCommand(BaseCommand):
    """A command whose failing app database, or a Ctrl-C, ends in a CommandError that says
    what to check and what was left behind, not in a traceback."""

    # What an interrupted run leaves behind; None: Ctrl-C is not handled here.
    interrupted: str | None = None

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except DatabaseError as exc:
            what = (
                "cannot connect to the app's database"
                if connection.connection is None
                else "the app's database failed"
            )
            raise CommandError(
                f"{what} ({' '.join(str(exc).split())}). Check DATABASE_URL and that "
                "PostgreSQL is up (`make services`), then run the command again."
            ) from None
        except KeyboardInterrupt:
            if self.interrupted is None:
                raise
            raise CommandError(f"interrupted (Ctrl-C): {self.interrupted}") from None
