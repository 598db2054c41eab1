"""What the agent audits and what each audit saw."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models


class Target(models.Model):
    """A database the agent audits. Its connection URL stays in the environment."""

    name = models.SlugField(max_length=63, unique=True)
    enabled = models.BooleanField(default=True, help_text="Audited by the weekly schedule.")
    allow_verify = models.BooleanField(
        default=False,
        help_text="Build indexes on this database itself to measure them (blocks writes "
        "to the table while it builds). Leave off for a database that serves traffic.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AuditRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="audits")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    verify = models.BooleanField(default=True)
    queries_collected = models.PositiveIntegerField(default=0)
    queries_analyzed = models.PositiveIntegerField(default=0)
    recommendations_count = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text="Queries not costed, with why.")
    phase_seconds = models.JSONField(default=dict, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # pg_stat_statements_info.stats_reset as this audit read it: a newer one next time
    # means the view was reset, so the next delta starts from zero.
    stats_reset = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.target} {self.started_at:%Y-%m-%d %H:%M} {self.status}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class QuerySnapshot(models.Model):
    """One pg_stat_statements row as one audit saw it: cumulative and since the last audit."""

    audit = models.ForeignKey(AuditRun, on_delete=models.CASCADE, related_name="snapshots")
    queryid = models.BigIntegerField(db_index=True)
    userid = models.BigIntegerField(default=0)
    query = models.TextField()
    # Since the previous audit of the same target (the view itself is cumulative).
    calls = models.BigIntegerField()
    total_time_ms = models.FloatField()
    mean_time_ms = models.FloatField()
    rows = models.BigIntegerField()
    shared_blks_hit = models.BigIntegerField()
    shared_blks_read = models.BigIntegerField()
    # The cumulative counters as read, for the next audit's delta.
    cumulative_calls = models.BigIntegerField()
    cumulative_total_time_ms = models.FloatField()
    cumulative_rows = models.BigIntegerField()
    cumulative_shared_blks_hit = models.BigIntegerField()
    cumulative_shared_blks_read = models.BigIntegerField()
    is_slow = models.BooleanField(default=False, help_text="Passed the audit's thresholds.")
    tables = ArrayField(models.TextField(), default=list, blank=True)
    timeouts = models.BigIntegerField(
        default=0,
        help_text="Times the server's log saw it cancelled by statement_timeout: then it is "
        "not in pg_stat_statements, its queryid comes from its shape and each call is "
        "counted as lasting DBARCHITECT_TIMED_OUT_MS.",
    )

    class Meta:
        ordering = ["-total_time_ms"]
        constraints = [
            models.UniqueConstraint(
                fields=["audit", "queryid", "userid"], name="unique_snapshot_per_audit"
            )
        ]

    def __str__(self) -> str:
        return f"{self.queryid}: {self.query[:60]}"
