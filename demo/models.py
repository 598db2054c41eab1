"""The sample EdFinance schema the agent audits in the demo."""

import uuid

from django.contrib.postgres.functions import RandomUUID
from django.db import models


class User(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    name = models.JSONField(default=dict, help_text='Localized: {"vi": ..., "en": ..., "zh": ...}')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "demo_user"

    def __str__(self) -> str:
        return self.email


class BehaviorLog(models.Model):
    # db_default: the COPY batch insert leaves ids to the database (gen_random_uuid()).
    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False
    )
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="behavior_logs")
    event_type = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict)
    timestamp = models.DateTimeField()

    class Meta:
        db_table = "demo_behavior_log"
        indexes = [models.Index(fields=["timestamp"], name="behavior_log_timestamp")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.timestamp:%Y-%m-%d %H:%M}"
