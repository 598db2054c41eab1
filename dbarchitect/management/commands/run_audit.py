"""manage.py run_audit: audit one target now and print the report."""

import json
import uuid

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from config.commands import ProjectCommand
from dbarchitect.agent import AuditAlreadyRunning, UnknownTarget, run_audit
from dbarchitect.budget import BudgetError, budget_parse
from dbarchitect.models import AuditRun
from dbarchitect.recording import audit_fail
from dbarchitect.report import report_text
from dbarchitect.targets import DEFAULT_TARGET, target_sync


class Command(ProjectCommand):
    help = (
        "Audit one target database: collect slow queries from pg_stat_statements, recommend "
        "indexes proven with HypoPG (and measured, where verification is on), check index "
        "health, and record everything. Prints a report; exits non-zero when the audit fails."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--target",
            default=DEFAULT_TARGET,
            help="Target name: 'default' (the app's database) or one named in "
            "DBARCHITECT_TARGETS. Default: %(default)s.",
        )
        parser.add_argument(
            "--no-verify",
            action="store_true",
            help="Skip verification (no real index builds): estimated costs only.",
        )
        parser.add_argument(
            "--budget",
            help="The most this audit's new indexes may take together: bytes with a unit "
            "(500MB, 2GB), a share of the audited tables' size (10%%), or none. "
            "Default: DBARCHITECT_INDEX_BUDGET.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print one JSON document instead of text.",
        )

    def handle(
        self, *args, target: str, no_verify: bool, as_json: bool, budget: str | None, **options
    ):
        try:
            index_budget = None if budget is None else budget_parse(budget)
        except BudgetError as exc:
            raise CommandError(f"--budget: {exc}") from None
        audit_id = uuid.uuid4()
        try:
            target_sync()
            audit = run_audit(
                target=target,
                verify=False if no_verify else None,
                audit_id=audit_id,
                budget=index_budget,
            )
        except KeyboardInterrupt:
            _mark_interrupted(audit_id)
            raise CommandError(
                f"interrupted: audit {audit_id} of target {target!r} was stopped and marked "
                "failed; nothing of it was recorded. Run it again."
            ) from None
        except ImproperlyConfigured as exc:
            raise CommandError(f"{exc}. Fix DBARCHITECT_TARGETS and run again.") from None
        except UnknownTarget as exc:
            raise CommandError(
                f"unknown target {exc.name!r}; configured targets: {', '.join(exc.known)}. "
                "Pass one of them with --target, or add it to DBARCHITECT_TARGETS."
            ) from None
        except AuditAlreadyRunning as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_render(audit.report, as_json=as_json))
        if audit.status != AuditRun.Status.SUCCEEDED:
            raise CommandError(
                f"audit {audit.id} of target {target!r} failed: {audit.error}. "
                "Fix the cause (is the target up, reachable, with pg_stat_statements and "
                "hypopg installed?) and run again."
            )


def _mark_interrupted(audit_id: uuid.UUID) -> None:
    """Ctrl-C skips the agent's own failure handling: no audit may stay `running`."""
    audit = AuditRun.objects.filter(id=audit_id, status=AuditRun.Status.RUNNING).first()
    if audit is not None:
        audit_fail(
            audit=audit,
            error="interrupted (Ctrl-C) before the audit finished; nothing of it was recorded",
            phase_seconds=audit.phase_seconds,
        )


def _render(report: dict, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(report, indent=2, default=str)
    return report_text(report)
