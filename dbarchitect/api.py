"""The audits API: start an audit (queued for a Celery worker), list audits, read one.

Thin views: parse with a nested serializer, call one service or selector, format.
"""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import PageQuerySerializer, QueueUnavailable, error_responses, paginate, paginated
from optimizations.api import OptimizationSerializer

from . import services
from .models import AuditRun, Target
from .selectors import (
    TaskStateUnavailable,
    audit_get,
    audit_list,
    audit_pending_get,
    audit_recommendations,
)

AUDIT_ID = OpenApiParameter(
    "audit_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="AuditRun id."
)

# What an audit's status reads as through the API: "queued" before a worker picks it up.
AUDIT_STATUSES = [("queued", "Queued"), *AuditRun.Status.choices]

# Shown for an audit that is still waiting in the queue (no AuditRun row yet).
_QUEUED_FIELDS = {
    "target": None,
    "started_at": None,
    "finished_at": None,
    "duration_seconds": None,
    "verify": None,
    "queries_collected": None,
    "queries_analyzed": None,
    "recommendations_count": None,
    "phase_seconds": None,
    "skipped": None,
    "recommendation_list": [],
}


class AuditSerializer(serializers.Serializer):
    """One audit as lists show it (the target by name, never its connection URL)."""

    id = serializers.UUIDField()
    target = serializers.CharField(source="target.name", allow_null=True)
    status = serializers.ChoiceField(
        choices=AUDIT_STATUSES,
        help_text="queued: waiting for a worker; running; succeeded; failed.",
    )
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField(allow_null=True)
    verify = serializers.BooleanField(allow_null=True)
    queries_collected = serializers.IntegerField(allow_null=True)
    queries_analyzed = serializers.IntegerField(allow_null=True)
    recommendations_count = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)

    class Meta:
        ref_name = "Audit"


class AuditDetailSerializer(AuditSerializer):
    """One audit with its phase timings, what it skipped and its recommendations."""

    phase_seconds = serializers.DictField(
        child=serializers.FloatField(), allow_null=True, help_text="Seconds per phase."
    )
    skipped = serializers.JSONField(allow_null=True, help_text="Queries not costed, with why.")
    recommendations = OptimizationSerializer(many=True, source="recommendation_list")

    class Meta:
        ref_name = "AuditDetail"


class AuditListApi(APIView):
    """GET lists audits; POST starts one (both on /api/audits/)."""

    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        target = serializers.CharField(max_length=63, required=False, help_text="Target name.")
        status = serializers.ChoiceField(choices=AuditRun.Status.choices, required=False)

        def validate_target(self, value: str) -> str:
            if not Target.objects.filter(name=value).exists():
                raise serializers.ValidationError(f"Unknown target {value!r}.")
            return value

    class InputSerializer(serializers.Serializer):
        target = serializers.CharField(max_length=63, help_text="Name of the target to audit.")
        verify = serializers.BooleanField(
            required=False,
            allow_null=True,
            default=None,
            help_text="Measure candidates with real index builds; null: the target's setting.",
        )

        class Meta:
            ref_name = "AuditStartRequest"

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        status = serializers.CharField(help_text='Always "queued".')
        url = serializers.URLField(help_text="Where to follow the audit.")

        class Meta:
            ref_name = "AuditStarted"

    @extend_schema(
        operation_id="audits_list",
        summary="List audits, newest first",
        parameters=[FilterSerializer, PageQuerySerializer],
        responses={
            200: paginated(AuditSerializer, name="PaginatedAuditList"),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = audit_list(**filters.validated_data)
        return paginate(queryset=queryset, request=request, view=self, serializer=AuditSerializer)

    @extend_schema(
        operation_id="audits_start",
        summary="Start an audit of a target; a Celery worker runs it",
        request=InputSerializer,
        responses={
            202: OutputSerializer,
            **error_responses(400, 401, 403, 503),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            audit_id = services.audit_queue(**data.validated_data)
        except ValueError as exc:
            raise exceptions.ValidationError({"target": [str(exc)]}) from exc
        except BrokerError as exc:
            raise QueueUnavailable() from exc
        url = request.build_absolute_uri(reverse("audits_api:detail", args=[audit_id]))
        payload = {"id": audit_id, "status": "queued", "url": url}
        return Response(self.OutputSerializer(payload).data, status=status.HTTP_202_ACCEPTED)


class AuditDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="audits_retrieve",
        summary="One audit: status, counts, duration, error, phase timings, recommendations",
        description='An audit still waiting for a worker reads as {"status": "queued"}; one '
        'whose task failed before it could record anything as {"status": "failed"} with the '
        "error. The other fields of both are null.",
        parameters=[AUDIT_ID],
        responses={200: AuditDetailSerializer, **error_responses(401, 403, 404, 503)},
    )
    def get(self, request, audit_id: str):
        audit = audit_get(audit_id=audit_id)
        if audit is not None:
            audit.recommendation_list = audit_recommendations(audit=audit)
            return Response(AuditDetailSerializer(audit).data)
        try:
            pending = audit_pending_get(audit_id=audit_id)
        except TaskStateUnavailable as exc:
            raise QueueUnavailable(
                "The task queue is unavailable; cannot tell whether this audit is queued."
            ) from exc
        if pending is None:
            raise exceptions.NotFound(f"No audit with id {audit_id!r}.")
        payload = {**_QUEUED_FIELDS, "id": pending.id, "status": pending.status}
        payload["error"] = pending.error
        return Response(AuditDetailSerializer(payload).data)
