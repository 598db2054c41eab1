"""The optimizations API: thin views over the selectors, the similarity search and the decisions.

One APIView per operation; each parses its input with a nested serializer, calls one
selector or service, and formats the result. Errors are JSON (config.api).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import FieldDoesNotExist
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.relations import PKOnlyObject
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import (
    Conflict,
    IsSuperUser,
    PageQuerySerializer,
    QueueUnavailable,
    error_responses,
    paginate,
    paginated,
)
from dbarchitect.models import Target

from . import applying, decisions
from .models import OptimizationLog
from .selectors import ORDERINGS, OptimizationFilters, optimization_get, optimization_list
from .services import optimization_list_similar

# The longest text the similarity search embeds (the model reads 256 tokens anyway).
MAX_SIMILAR_QUERY_LENGTH = 2000
# The most neighbours one similarity search returns.
MAX_SIMILAR_LIMIT = 50

OPTIMIZATION_ID = OpenApiParameter(
    "optimization_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="OptimizationLog id."
)


class PageSerializer(serializers.ListSerializer):
    """A page of rows, each field's path of model fields resolved once per page, not per
    row: DRF's own per-row, per-field lookup (a callable check and error wrapping on every
    value) was half a list request's CPU. Every value still goes through its field's
    to_representation, and any other field through DRF's own lookup: the same JSON."""

    def to_representation(self, data):
        model = self.child.Meta.model
        fields = [
            (field, field.source_attrs if _model_field_path(model, field) else None)
            for field in self.child._readable_fields
        ]
        return [
            {field.field_name: _value(item, field, path) for field, path in fields} for item in data
        ]


def _model_field_path(model, field: serializers.Field) -> bool:
    """Whether the field shows a chain of model fields (audit_id, target.name) as it is."""
    if field.source == "*" or type(field).get_attribute is not serializers.Field.get_attribute:
        return False
    for attr in field.source_attrs:
        if model is None:
            return False
        try:
            model = model._meta.get_field(attr).related_model  # get_field knows audit_id too
        except FieldDoesNotExist:
            return False
    return True


def _value(item, field: serializers.Field, path: list[str] | None):
    if path is None:
        value = field.get_attribute(item)
        if (value.pk if isinstance(value, PKOnlyObject) else value) is None:
            return None
        return field.to_representation(value)
    for attr in path:
        item = getattr(item, attr)
        if item is None:
            return None
    return field.to_representation(item)


class OptimizationSerializer(serializers.ModelSerializer):
    """One recommendation as lists show it (no plans; the target by name, never its URL)."""

    target = serializers.CharField(source="target.name", allow_null=True, read_only=True)
    audit = serializers.UUIDField(source="audit_id", allow_null=True, read_only=True)
    decided_by = serializers.CharField(
        source="decided_by.username", allow_null=True, read_only=True
    )

    class Meta:
        model = OptimizationLog
        ref_name = "Optimization"
        list_serializer_class = PageSerializer
        fields = [
            "id",
            "status",
            "kind",
            "target",
            "audit",
            "query_text",
            "recommendation",
            "ddl",
            "table_name",
            "columns",
            "performance_gain",
            "impact",
            "impact_basis",
            "confidence",
            "estimated_cost_before",
            "estimated_cost_after",
            "measured_ms_before",
            "measured_ms_after",
            "index_size_bytes",
            "explanation",
            "pr_url",
            "outcome",
            "created_at",
            "applied_at",
            "decided_by",
            "decided_at",
        ]
        read_only_fields = fields


class ApplyProgressSerializer(serializers.Serializer):
    """Where the build of an applying recommendation is (pg_stat_progress_create_index)."""

    state = serializers.ChoiceField(
        choices=[state.value for state in applying.ApplyState],
        help_text="queued: waiting for a worker; building; lost: its worker died or none "
        "started it in time, apply again; unknown: the target cannot be reached.",
    )
    message = serializers.CharField()
    phase = serializers.CharField(help_text="The build's phase, while building.")
    lockers_done = serializers.IntegerField(allow_null=True)
    lockers_total = serializers.IntegerField(allow_null=True)
    blocks_done = serializers.IntegerField(allow_null=True)
    blocks_total = serializers.IntegerField(allow_null=True)
    blocks_percent = serializers.FloatField(allow_null=True)
    tuples_done = serializers.IntegerField(allow_null=True)
    tuples_total = serializers.IntegerField(allow_null=True)
    tuples_percent = serializers.FloatField(allow_null=True)


class OptimizationDetailSerializer(OptimizationSerializer):
    """Everything about one recommendation: plans, the confidence formula, what it served."""

    apply_progress = serializers.SerializerMethodField(
        help_text="While the status is applying: how the build goes; null otherwise."
    )

    @extend_schema_field(ApplyProgressSerializer(allow_null=True))
    def get_apply_progress(self, obj: OptimizationLog) -> dict | None:
        progress = applying.recommendation_apply_progress(recommendation=obj)
        return None if progress is None else ApplyProgressSerializer(progress).data

    class Meta(OptimizationSerializer.Meta):
        ref_name = "OptimizationDetail"
        fields = [
            *OptimizationSerializer.Meta.fields,
            "fingerprint",
            "queryids",
            "confidence_breakdown",
            "plan_before",
            "plan_after",
            "details",
            "mean_ms_after_apply",
            "apply_progress",
        ]
        read_only_fields = fields


class SimilarOptimizationSerializer(OptimizationSerializer):
    similarity = serializers.FloatField(read_only=True, help_text="Cosine similarity, -1..1.")

    class Meta(OptimizationSerializer.Meta):
        ref_name = "SimilarOptimization"
        fields = [*OptimizationSerializer.Meta.fields, "similarity"]
        read_only_fields = fields


def _get_or_404(optimization_id: str) -> OptimizationLog:
    optimization = optimization_get(optimization_id=optimization_id)
    if optimization is None:
        raise exceptions.NotFound(f"No optimization with id {optimization_id!r}.")
    return optimization


@contextmanager
def _conflict_on_decision_error() -> Iterator[None]:
    """A decision the recommendation's state does not allow: 409, saying why."""
    try:
        yield
    except decisions.DecisionError as exc:
        raise Conflict(str(exc)) from exc


class OptimizationListApi(APIView):
    permission_classes = [IsAdminUser]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=OptimizationLog.Status.choices, required=False)
        kind = serializers.ChoiceField(choices=OptimizationLog.Kind.choices, required=False)
        target = serializers.CharField(max_length=63, required=False, help_text="Target name.")
        created_after = serializers.DateTimeField(
            required=False, help_text="Created at or after (ISO 8601)."
        )
        created_before = serializers.DateTimeField(
            required=False, help_text="Created before (ISO 8601)."
        )
        min_confidence = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        ordering = serializers.ChoiceField(
            choices=ORDERINGS,
            default="-impact",
            help_text="Default -impact: the largest workload time saved per week first "
            "('-' first: descending; ties by id).",
        )

        def validate_target(self, value: str) -> str:
            if not Target.objects.filter(name=value).exists():
                raise serializers.ValidationError(f"Unknown target {value!r}.")
            return value

        def validate(self, data: dict) -> dict:
            after, before = data.get("created_after"), data.get("created_before")
            if after is not None and before is not None and after >= before:
                raise serializers.ValidationError(
                    {"created_before": ["Must be later than created_after."]}
                )
            return data

    @extend_schema(
        operation_id="optimizations_list",
        summary="List recommendations",
        parameters=[FilterSerializer, PageQuerySerializer],
        responses={
            200: paginated(OptimizationSerializer, name="PaginatedOptimizationList"),
            **error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        queryset = optimization_list(filters=OptimizationFilters(**filters.validated_data))
        return paginate(
            queryset=queryset, request=request, view=self, serializer=OptimizationSerializer
        )


class OptimizationDetailApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="optimizations_retrieve",
        summary="One recommendation with its plans and confidence breakdown",
        parameters=[OPTIMIZATION_ID],
        responses={200: OptimizationDetailSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, optimization_id: str):
        return Response(OptimizationDetailSerializer(_get_or_404(optimization_id)).data)


class OptimizationSimilarApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        query = serializers.CharField(
            max_length=MAX_SIMILAR_QUERY_LENGTH, help_text="A SQL query or a description."
        )
        limit = serializers.IntegerField(min_value=1, max_value=MAX_SIMILAR_LIMIT, default=5)

    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        results = SimilarOptimizationSerializer(many=True)

        class Meta:
            ref_name = "SimilarOptimizationList"

    @extend_schema(
        operation_id="optimizations_similar",
        summary="Past recommendations nearest to a query (embedding search), closest first",
        parameters=[InputSerializer],
        responses={200: OutputSerializer, **error_responses(400, 401, 403)},
    )
    def get(self, request):
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        neighbours = optimization_list_similar(
            query=params.validated_data["query"],
            limit=params.validated_data["limit"],
            queryset=OptimizationLog.objects.select_related("target", "decided_by"),
        )
        items = []
        for neighbour in neighbours:
            neighbour.optimization.similarity = neighbour.similarity
            items.append(neighbour.optimization)
        return Response(self.OutputSerializer({"count": len(items), "results": items}).data)


class OptimizationApproveApi(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="optimizations_approve",
        summary="Approve a recommendation",
        parameters=[OPTIMIZATION_ID],
        request=None,
        responses={200: OptimizationDetailSerializer, **error_responses(401, 403, 404, 409)},
    )
    def post(self, request, optimization_id: str):
        optimization = _get_or_404(optimization_id)
        with _conflict_on_decision_error():
            optimization = decisions.recommendation_approve(
                recommendation=optimization, user=request.user
            )
        return Response(OptimizationDetailSerializer(optimization).data)


class OptimizationRejectApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            max_length=decisions.MAX_REJECT_REASON_LENGTH,
            required=False,
            allow_blank=True,
            default="",
            help_text="Why.",
        )

        class Meta:
            ref_name = "OptimizationRejectRequest"

    @extend_schema(
        operation_id="optimizations_reject",
        summary="Reject a recommendation (the agent will not propose it again)",
        parameters=[OPTIMIZATION_ID],
        request=InputSerializer,
        responses={200: OptimizationDetailSerializer, **error_responses(400, 401, 403, 404, 409)},
    )
    def post(self, request, optimization_id: str):
        optimization = _get_or_404(optimization_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with _conflict_on_decision_error():
            optimization = decisions.recommendation_reject(
                recommendation=optimization,
                user=request.user,
                reason=data.validated_data["reason"],
            )
        return Response(OptimizationDetailSerializer(optimization).data)


class OptimizationApplyApi(APIView):
    permission_classes = [IsSuperUser]

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        status = serializers.ChoiceField(
            choices=OptimizationLog.Status.choices,
            help_text="applying while a worker builds the index; with eager Celery the build "
            "already ran: applied, or back to proposed/approved when it failed.",
        )
        message = serializers.CharField()
        url = serializers.URLField(help_text="The recommendation: follow its status there.")

        class Meta:
            ref_name = "OptimizationApplyQueued"

    @extend_schema(
        operation_id="optimizations_apply",
        summary="Queue the build of a recommended index (CREATE INDEX CONCURRENTLY); "
        "superusers only",
        description="202 once the apply is queued: a Celery worker builds the index, the "
        "recommendation reads applying (with apply_progress) until it is applied, or back to "
        "its earlier status with details.apply_error. 409 when the recommendation cannot be "
        "applied in its state or is being applied already; 503 when the task queue is down.",
        parameters=[OPTIMIZATION_ID],
        request=None,
        responses={202: OutputSerializer, **error_responses(401, 403, 404, 409, 503)},
    )
    def post(self, request, optimization_id: str):
        optimization = _get_or_404(optimization_id)
        with _conflict_on_decision_error():
            try:
                started = applying.recommendation_apply_start(
                    recommendation=optimization, applied_by=request.user
                )
            except BrokerError as exc:
                raise QueueUnavailable() from exc
        url = reverse("optimizations_api:detail", args=[optimization.pk])
        payload = {
            "id": optimization.pk,
            "status": started.recommendation.status,
            "message": started.message,
            "url": request.build_absolute_uri(url),
        }
        return Response(self.OutputSerializer(payload).data, status=status.HTTP_202_ACCEPTED)
