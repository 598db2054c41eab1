"""Ask the database: the retrieval memory (TrainingItem) and every question asked (QuestionLog)."""

from django.conf import settings
from django.db import models
from pgvector.django import HnswIndex, VectorField


class TrainingItem(models.Model):
    """One piece of retrieval context: a table's DDL, a note, or a question with its SQL."""

    class Kind(models.TextChoices):
        DDL = "ddl"
        DOCUMENTATION = "documentation"
        QUESTION_SQL = "question_sql", "question + SQL"

    class Source(models.TextChoices):
        SCHEMA = "schema", "trained on the schema"
        FILE = "file"
        ADMIN = "admin"
        API = "api"
        FEEDBACK = "feedback", "answer marked correct"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=63, default="default", db_index=True)
    text = models.TextField(blank=True, help_text="DDL or documentation text.")
    question = models.TextField(blank=True)
    sql = models.TextField(blank=True)
    table_name = models.CharField(max_length=255, blank=True, help_text="For DDL items.")
    embedding = VectorField(dimensions=settings.EMBEDDING_DIMENSIONS, null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            HnswIndex(
                name="nlsql_training_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["target", "kind"], name="nlsql_training_target_kind"),
        ]

    def __str__(self) -> str:
        label = self.question or self.table_name or self.text
        return f"{self.kind}: {label[:80]}"

    @property
    def embedding_text(self) -> str:
        """Questions are matched to questions; DDL and notes by their own text."""
        return self.question if self.kind == self.Kind.QUESTION_SQL else self.text


class QuestionLog(models.Model):
    """Every question asked (or SQL run), what came of it, and the asker's verdict."""

    class Status(models.TextChoices):
        OK = "ok"
        REFUSED = "refused"
        ERROR = "error"

    class Feedback(models.TextChoices):
        NONE = "none"
        CORRECT = "correct"
        WRONG = "wrong"

    class Source(models.TextChoices):
        LLM = "llm"
        TRAINED = "trained", "trained question (no LLM)"
        SQL = "sql", "SQL given directly"
        NONE = "none", "no answer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target = models.CharField(max_length=63, default="default")
    question = models.TextField(blank=True)
    sql = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.NONE)
    reason = models.TextField(blank=True, help_text="Why it was refused, or how it was answered.")
    row_count = models.IntegerField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    feedback = models.CharField(max_length=16, choices=Feedback.choices, default=Feedback.NONE)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.status}: {(self.question or self.sql)[:80]}"


class AskPage(QuestionLog):
    """Only there so the admin index links to the "Ask the database" page."""

    class Meta:
        proxy = True
        verbose_name = "Ask the database"
        verbose_name_plural = "Ask the database"
