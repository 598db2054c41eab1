"""The demo's scratch repository: where `make demo` lets the agent commit its migrations.

A new git repository under the project's ignored `.local/` folder holding a copy of what the
migration writer reads and edits (each local app's models module and migrations), committed
on `main`. The agent's proposal branches go there, never into the user's own checkout.
"""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import git
from django.apps import apps
from django.conf import settings

AUTHOR = git.Actor("DB Architect demo", "db-architect@localhost")
# A file only this module writes: a directory without it is not ours to reuse.
MARKER = ".dbarchitect-demo-repo"
BASE_BRANCH = "main"


class ScratchRepoError(ValueError):
    """The path cannot be the demo's scratch repository; str() says why."""


@dataclass(frozen=True)
class ScratchRepo:
    path: Path
    commit: str
    created: bool
    changed: bool  # the app layout was copied again and committed


def scratch_repo_default_path() -> Path:
    return Path(settings.BASE_DIR) / ".local" / "demo-repo"


def _layout() -> dict[Path, Path]:
    """{path in the repo: file in the project} for every local app's models and migrations."""
    base = Path(settings.BASE_DIR).resolve()
    installed = Path(sys.prefix).resolve()  # a virtualenv inside the checkout is not the app's
    files: dict[Path, Path] = {}
    for config in apps.get_app_configs():
        app_dir = Path(config.path).resolve()
        if not app_dir.is_relative_to(base) or app_dir.is_relative_to(installed):
            continue
        migrations = app_dir / "migrations"
        if not migrations.is_dir():
            continue
        for source in sorted(migrations.glob("*.py")):
            files[source.relative_to(base)] = source
        module = sys.modules.get(f"{config.name}.models")
        if module is not None and getattr(module, "__file__", None):
            source = Path(module.__file__).resolve()
            files[source.relative_to(base)] = source
    return files


def scratch_repo_prepare(*, path: Path | None = None) -> ScratchRepo:
    """Create (or bring up to date) the scratch repository at `path`."""
    path = (path or scratch_repo_default_path()).resolve()
    base = Path(settings.BASE_DIR).resolve()
    if path == base or base.is_relative_to(path):
        raise ScratchRepoError(
            f"{path} is the project's own checkout (or holds it): choose a path under .local/"
        )
    created = not (path / MARKER).exists()
    if created and path.exists() and any(path.iterdir()):
        raise ScratchRepoError(
            f"{path} exists and is not the demo's scratch repository: remove it or choose "
            "another path"
        )
    if created:
        path.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(path, initial_branch=BASE_BRANCH)
        (path / MARKER).write_text(
            "Scratch repository of `make demo`: the agent's proposal branches.\n"
        )
    else:
        repo = git.Repo(path)
        if repo.active_branch.name != BASE_BRANCH:
            repo.git.checkout(BASE_BRANCH)
    for relative, source in _layout().items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    repo.git.add("--all")
    changed = created or repo.is_dirty(index=True, working_tree=False, untracked_files=False)
    if changed:
        repo.index.commit("Demo app layout: models and migrations", author=AUTHOR, committer=AUTHOR)
    return ScratchRepo(path=path, commit=repo.head.commit.hexsha, created=created, changed=changed)
