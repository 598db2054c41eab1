"""Propose the confident recommendations: a migration on a git branch, and a pull request.

One audit gives at most one branch (`dbarchitect/audit-<id>`) with one migration per app,
committed in a temporary worktree so the configured checkout's own working tree is never
touched. The branch is pushed to `origin` when the repository has one, and a pull request is
opened with PyGithub when GITHUB_TOKEN and GITHUB_REPOSITORY are set (GITHUB_API_URL points
it at GitHub Enterprise or a test server).
"""

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import git
from django.conf import settings

from optimizations.models import OptimizationLog

from .escaping import md_code_span, md_lines, md_text
from .migration_writer import MigrationWriteError, migration_files_write

logger = logging.getLogger(__name__)

AUTHOR = git.Actor("DB Architect", "db-architect@localhost")
# GitHub rejects pull request bodies longer than 65,536 characters.
PR_BODY_MAX_CHARS = 60_000
PROPOSABLE_KINDS = (
    OptimizationLog.Kind.INDEX,
    OptimizationLog.Kind.FK_INDEX,
    OptimizationLog.Kind.STATISTICS,  # a RunSQL of CREATE STATISTICS + ANALYZE
)


class ProposalStatus(StrEnum):
    """What became of an audit's proposal (the report's proposal.status)."""

    OPENED = "opened"  # committed on a branch (pushed, and a pull request, where set up)
    SKIPPED = "skipped"  # nothing to propose, or no repository configured
    FAILED = "failed"  # the branch or the pull request could not be made


class ProposalError(RuntimeError):
    """The branch or the pull request could not be made; str() says what to fix."""


@dataclass(frozen=True)
class Proposal:
    branch: str
    base: str
    commit: str
    files: list[str]
    index_names: list[str]
    pushed: bool = False
    pr_url: str = ""
    notes: list[str] = field(default_factory=list)


def proposal_candidates(
    logs: list[OptimizationLog], *, threshold: float | None = None
) -> list[OptimizationLog]:
    """The recommendations confident enough for a pull request (strictly above the gate)
    whose index a migration can build concurrently."""
    return [log for log in _confident(logs, threshold) if not _held_back_reason(log)]


def proposal_held_back(
    logs: list[OptimizationLog], *, threshold: float | None = None
) -> list[tuple[OptimizationLog, str]]:
    """Confident recommendations left out of the pull request, each with the reason."""
    held = [(log, _held_back_reason(log)) for log in _confident(logs, threshold)]
    return [(log, reason) for log, reason in held if reason]


def _confident(logs: list[OptimizationLog], threshold: float | None) -> list[OptimizationLog]:
    threshold = settings.DBARCHITECT_PR_CONFIDENCE if threshold is None else threshold
    return [
        log
        for log in logs
        if log.kind in PROPOSABLE_KINDS and log.ddl and log.confidence > threshold
    ]


def _held_back_reason(log: OptimizationLog) -> str:
    details = log.details or {}
    if details.get("partitioned"):
        return (
            "partitioned table: PostgreSQL cannot build its index CONCURRENTLY, so a "
            "migration would block writes; run the DDL in a quiet hour instead"
        )
    if config := details.get("assumed_text_search_config"):
        return (
            f"its to_tsvector assumes the text search configuration {config} "
            "(pg_stat_statements hides the query's own): check that the application "
            "searches with it, then apply the DDL"
        )
    return ""


def proposal_text(*, audit_id: str, logs: list[OptimizationLog]) -> tuple[str, str]:
    """The commit / pull request title and body."""
    title = (
        f"DB Architect: {len(logs)} index{'es' if len(logs) != 1 else ''} from audit "
        + (audit_id[:8])
    )
    sections = [
        "Recommended by DB Architect; each index was costed with HypoPG and, where "
        "verification is on, measured with EXPLAIN ANALYZE. The migrations build the indexes "
        "concurrently (atomic = False). An index already applied from the admin has the same "
        "name: fake its migration (`manage.py migrate <app> <migration> --fake`).",
    ]
    for log in logs:
        sections.append(  # names and the explanation come from the audited database
            f"### {md_code_span(log.ddl)}\n\nConfidence {log.confidence:.2f} (target "
            f"{md_text(log.target.name) if log.target_id else '?'}, recommendation {log.pk}).\n\n"
            f"{md_lines(log.explanation or log.recommendation)}"
        )
    body = "\n\n".join(sections)
    if len(body) > PR_BODY_MAX_CHARS:
        body = body[: PR_BODY_MAX_CHARS - 40] + "\n\n(truncated; see the admin)"
    return title, body


def _open_pull_request(*, branch: str, base: str, title: str, body: str) -> str:
    from github import Auth, Github, GithubException

    client = Github(
        auth=Auth.Token(settings.GITHUB_TOKEN), base_url=settings.GITHUB_API_URL, lazy=True
    )
    try:
        repository = client.get_repo(settings.GITHUB_REPOSITORY)
        pull = repository.create_pull(base=base, head=branch, title=title, body=body)
    except GithubException as exc:
        message = exc.data.get("message") if isinstance(exc.data, dict) else exc.data
        raise ProposalError(
            f"GitHub refused the pull request for {branch} on "
            f"{settings.GITHUB_REPOSITORY}: {exc.status} {message}"
        ) from None
    finally:
        client.close()
    return pull.html_url


def proposal_open(*, audit_id: str, logs: list[OptimizationLog]) -> Proposal:
    """Branch + commit the migrations of these recommendations; push and open a PR if set up."""
    if not settings.DBARCHITECT_GIT_REPO:
        raise ProposalError("DBARCHITECT_GIT_REPO is not set: no repository to commit to")
    if not logs:
        raise ProposalError("Nothing to propose")
    try:
        repo = git.Repo(settings.DBARCHITECT_GIT_REPO)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise ProposalError(
            f"DBARCHITECT_GIT_REPO={settings.DBARCHITECT_GIT_REPO!r} is not a git repository"
        ) from None
    if repo.head.is_detached:
        raise ProposalError("The repository's HEAD is detached; check out the base branch")
    base = repo.active_branch.name
    branch = f"dbarchitect/audit-{audit_id[:8]}"
    if branch in repo.heads:
        raise ProposalError(f"Branch {branch} already exists in {repo.working_dir}")
    title, body = proposal_text(audit_id=audit_id, logs=logs)
    workdir = Path(tempfile.mkdtemp(prefix="dbarchitect-"))
    worktree = workdir / "tree"
    repo.git.worktree("add", "-b", branch, str(worktree), base)
    try:
        files, names = migration_files_write(
            ddls=[log.ddl for log in logs],
            repo_root=worktree,
            name_suffix=f"dbarchitect_{audit_id[:8]}",
        )
        tree = git.Repo(worktree)
        tree.index.add([str(item.path) for item in files])
        commit = tree.index.commit(f"{title}\n\n{body}", author=AUTHOR, committer=AUTHOR)
    except Exception:
        repo.git.worktree("remove", "--force", str(worktree))
        repo.git.branch("-D", branch)
        raise
    finally:
        if worktree.exists():
            repo.git.worktree("remove", "--force", str(worktree))
        shutil.rmtree(workdir, ignore_errors=True)
    notes: list[str] = []
    pushed = False
    if "origin" in [remote.name for remote in repo.remotes]:
        try:
            repo.remote("origin").push(f"refs/heads/{branch}:refs/heads/{branch}")
            pushed = True
        except git.GitCommandError as exc:
            raise ProposalError(f"git push of {branch} to origin failed: {exc.stderr}") from None
    else:
        notes.append("no origin remote: branch not pushed")
    pr_url = ""
    if settings.GITHUB_TOKEN and settings.GITHUB_REPOSITORY:
        pr_url = _open_pull_request(branch=branch, base=base, title=title, body=body)
    else:
        notes.append("GITHUB_TOKEN / GITHUB_REPOSITORY not set: no pull request")
    return Proposal(
        branch=branch,
        base=base,
        commit=commit.hexsha,
        files=[str(item.path) for item in files],
        index_names=names,
        pushed=pushed,
        pr_url=pr_url,
        notes=notes,
    )


def proposal_record(*, proposal: Proposal, logs: list[OptimizationLog]) -> None:
    """Store the pull request URL and the branch on each proposed recommendation."""
    for log in logs:
        log.pr_url = proposal.pr_url
        log.details = {
            **(log.details or {}),
            "proposal": {
                "branch": proposal.branch,
                "commit": proposal.commit,
                "files": proposal.files,
            },
        }
    OptimizationLog.objects.bulk_update(logs, ["pr_url", "details"])


def audit_propose(*, audit) -> dict | None:
    """After an audit committed: open one proposal for its confident recommendations.

    Never fails the audit: what happened (opened, skipped, failed) goes to its report.
    """
    logs = list(audit.optimizations.select_related("target"))
    candidates = proposal_candidates(logs)
    held = proposal_held_back(logs)
    if not candidates and not held:
        return None
    summary: dict = {"candidates": [str(log.pk) for log in candidates]}
    if held:
        summary["held_back"] = [{"id": str(log.pk), "reason": why} for log, why in held]
    if not candidates:
        summary.update(
            status=ProposalStatus.SKIPPED,
            reason="no confident recommendation a migration builds",
        )
    elif not settings.DBARCHITECT_GIT_REPO:
        summary.update(status=ProposalStatus.SKIPPED, reason="DBARCHITECT_GIT_REPO is not set")
    else:
        try:
            proposal = proposal_open(audit_id=audit.id.hex, logs=candidates)
        except (ProposalError, MigrationWriteError, git.GitError) as exc:
            logger.warning("proposal for audit %s failed: %s", audit.id, exc)
            summary.update(status=ProposalStatus.FAILED, error=str(exc))
        else:
            proposal_record(proposal=proposal, logs=candidates)
            summary.update(
                status=ProposalStatus.OPENED,
                branch=proposal.branch,
                base=proposal.base,
                commit=proposal.commit,
                files=proposal.files,
                pushed=proposal.pushed,
                pr_url=proposal.pr_url,
                notes=proposal.notes,
            )
    audit.report = {**(audit.report or {}), "proposal": summary}
    audit.save(update_fields=["report"])
    return summary
