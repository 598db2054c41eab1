"""Every recommendation the agent made, with its embedding: the agent's memory."""

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import HnswIndex, VectorField

# A label longer than this is cut (ranked lists fit 1280 px).
LABEL_CHARS = 48


class ImpactBasis(models.TextChoices):
    """Where a recommendation's milliseconds saved come from."""

    MEASURED = "measured"  # EXPLAIN ANALYZE before and after a real build, every served query
    ESTIMATED = "estimated"  # the planner's cost reduction applied to the mean time
    NONE = "none"  # saves no query time (a drop, a rewrite hint): its gain is writes and space


class OptimizationLog(models.Model):
    ImpactBasis = ImpactBasis

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        APPROVED = "approved"
        APPLYING = "applying"  # a worker is building the index (optimizations.applying)
        APPLIED = "applied"
        REJECTED = "rejected"
        SUPERSEDED = "superseded"

    class Kind(models.TextChoices):
        INDEX = "index"
        REWRITE = "rewrite"
        DROP_INDEX = "drop_index"
        INVALID_INDEX = "invalid_index"
        FK_INDEX = "fk_index"
        # CREATE STATISTICS on correlated columns, proved to fix a plan's row estimate.
        STATISTICS = "statistics"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    query_text = models.TextField()
    recommendation = models.TextField()
    performance_gain = models.FloatField(default=0.0, help_text="Percent.")
    confidence = models.FloatField(default=0.0, help_text="0..1")
    # What the list ranks by: workload time saved per week (optimizations.impact).
    impact = models.FloatField(
        default=0.0, help_text="Workload ms saved per week: calls per week x ms saved per call."
    )
    impact_basis = models.CharField(
        max_length=16, choices=ImpactBasis.choices, default=ImpactBasis.NONE
    )
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INDEX)
    ddl = models.TextField(blank=True)
    target = models.ForeignKey(
        "dbarchitect.Target",
        on_delete=models.PROTECT,
        related_name="optimizations",
        null=True,
        blank=True,
    )
    audit = models.ForeignKey(
        "dbarchitect.AuditRun",
        on_delete=models.SET_NULL,
        related_name="optimizations",
        null=True,
        blank=True,
    )
    fingerprint = models.CharField(
        max_length=255,
        blank=True,
        help_text="What makes two recommendations the same: the DDL's normalized form.",
    )
    queryids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    table_name = models.CharField(max_length=255, blank=True)
    columns = ArrayField(models.TextField(), default=list, blank=True)
    estimated_cost_before = models.FloatField(null=True, blank=True)
    estimated_cost_after = models.FloatField(null=True, blank=True)
    measured_ms_before = models.FloatField(null=True, blank=True)
    measured_ms_after = models.FloatField(null=True, blank=True)
    index_size_bytes = models.BigIntegerField(null=True, blank=True)
    plan_before = models.JSONField(null=True, blank=True)
    plan_after = models.JSONField(null=True, blank=True)
    confidence_breakdown = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    explanation = models.TextField(blank=True)
    pr_url = models.URLField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Mean time of the served queries after an apply, measured by the next audit.
    mean_ms_after_apply = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=32, blank=True, help_text="gain, no_gain, regression")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            HnswIndex(
                name="optlog_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["target", "fingerprint"], name="optlog_target_fingerprint"),
            models.Index(fields=["status", "-created_at"], name="optlog_status_created"),
            models.Index(fields=["-impact", "id"], name="optlog_impact"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.recommendation[:80]}"

    @property
    def label(self) -> str:
        """What it is in a few words, for ranked lists: the new index's keys, or the index
        to drop, or the start of the hint."""
        details = self.details or {}
        if self.kind in (self.Kind.INDEX, self.Kind.FK_INDEX) and self.columns:
            method = details.get("method") or "btree"
            keys = ", ".join(column.replace('"', "") for column in self.columns)
            keys = keys if keys.startswith("(") and len(self.columns) == 1 else f"({keys})"
            where = f" where {details['where']}" if details.get("where") else ""
            return f"{'' if method == 'btree' else method + ' '}{keys}{where}"
        if details.get("index"):
            return str(details["index"])
        text = " ".join(self.recommendation.split(": ", 1)[0].split())
        return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"

    @property
    def table_short(self) -> str:
        """The table as a DBA names it: without the public schema."""
        return self.table_name.removeprefix("public.")
