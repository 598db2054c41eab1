from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from kombu.exceptions import OperationalError as BrokerError

from config.commands import ProjectCommand
from optimizations.applying import recommendation_apply_start
from optimizations.decisions import DecisionError
from optimizations.models import OptimizationLog
from optimizations.selectors import optimization_get


class Command(ProjectCommand):
    help = (
        "Apply a recommended index (CREATE INDEX CONCURRENTLY on its target): queue the build "
        "for a Celery worker, or with --wait build it in this process and wait for the result."
    )

    def add_arguments(self, parser):
        parser.add_argument("recommendation_id", help="The recommendation's id (a UUID).")
        parser.add_argument(
            "--user",
            required=True,
            help="Username of the superuser who applies it (recorded on the recommendation).",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Build here and wait (no worker needed; a long build keeps this command busy).",
        )

    def handle(self, *args, recommendation_id: str, user: str, wait: bool, **options):
        log = optimization_get(optimization_id=recommendation_id)
        if log is None:
            raise CommandError(f"No recommendation with id {recommendation_id!r}")
        applied_by = get_user_model().objects.filter(username=user).first()
        if applied_by is None or not applied_by.is_superuser:
            raise CommandError(f"{user!r} is not a superuser; pass a superuser's name to --user")
        try:
            started = recommendation_apply_start(
                recommendation=log, applied_by=applied_by, in_process=wait
            )
        except DecisionError as exc:
            raise CommandError(str(exc)) from None
        except BrokerError:
            raise CommandError(
                "The task queue (Redis) is unavailable; nothing was queued. Start it, or build "
                "here with --wait."
            ) from None
        if started.ran_here and started.recommendation.status != OptimizationLog.Status.APPLIED:
            raise CommandError(started.message)
        self.stdout.write(started.message)
