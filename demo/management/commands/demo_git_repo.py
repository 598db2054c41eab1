from pathlib import Path

from django.core.management.base import CommandError

from config.commands import ProjectCommand
from demo.scratch_repo import ScratchRepoError, scratch_repo_default_path, scratch_repo_prepare


class Command(ProjectCommand):
    help = (
        "Create or update the demo's scratch git repository (default .local/demo-repo): a copy "
        "of the local apps' models and migrations, so an audit with DBARCHITECT_GIT_REPO "
        "pointing there commits its migration on a branch, never in this checkout."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--path",
            default=str(scratch_repo_default_path()),
            help="Where the scratch repository lives (default: .local/demo-repo).",
        )

    def handle(self, *args, path, **options):
        try:
            repo = scratch_repo_prepare(path=Path(path))
        except ScratchRepoError as exc:
            raise CommandError(str(exc)) from None
        state = "created" if repo.created else "updated" if repo.changed else "up to date"
        self.stdout.write(f"Scratch repository {state}: {repo.path} ({repo.commit[:12]})")
