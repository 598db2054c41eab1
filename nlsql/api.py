"""POST /api/ask, /api/explain, /api/training, /api/ask/<id>/feedback: thin views, staff only."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import error_responses

from .ask import InvalidInput, question_ask, question_log_feedback, target_validate
from .generate import explain_query
from .guard import SqlRefused, sql_check
from .models import QuestionLog
from .permissions import tables_check_permitted
from .runner import QueryFailed
from .training import TrainingError, training_add_documentation, training_add_pair


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers, booleans and lists instead of casting them."""

    default_error_messages = {"not_text": "Must be text."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text")
        return super().to_internal_value(data)


def _validated_input(serializer_class: type[serializers.Serializer], request) -> dict:
    """The request's validated data with a known target (400 naming the field otherwise)."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    data = dict(serializer.validated_data)
    try:
        data["target"] = target_validate(data["target"])
    except InvalidInput as exc:
        raise exceptions.ValidationError({"target": [str(exc)]}) from None
    return data


class AskApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        question = StrictCharField(
            max_length=settings.NLSQL_MAX_QUESTION_LENGTH, trim_whitespace=True
        )
        target = StrictCharField(required=False, default="default", max_length=63)
        run = serializers.BooleanField(required=False, default=True)

        class Meta:
            ref_name = "AskRequest"  # a component name of its own in the OpenAPI schema

    class OutputSerializer(serializers.Serializer):
        question = serializers.CharField()
        target = serializers.CharField()
        status = serializers.ChoiceField(choices=["ok", "refused", "error"])
        source = serializers.CharField(help_text="llm, trained, sql or none")
        sql = serializers.CharField(allow_blank=True)
        reason = serializers.CharField(allow_blank=True)
        error = serializers.CharField(allow_blank=True)
        columns = serializers.ListField(child=serializers.CharField())
        rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()))
        truncated = serializers.BooleanField()
        row_count = serializers.IntegerField(allow_null=True)
        duration_ms = serializers.FloatField(allow_null=True)
        log_id = serializers.IntegerField(allow_null=True)

        class Meta:
            ref_name = "AskResponse"

    @extend_schema(
        summary="Ask the database a question in plain language",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = _validated_input(self.InputSerializer, request)
        try:
            result = question_ask(
                question=data["question"], target=data["target"], run=data["run"], user=request.user
            )
        except InvalidInput as exc:
            raise exceptions.ValidationError({"question": [str(exc)]}) from None
        return Response(self.OutputSerializer(result.as_dict()).data)


class ExplainApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        sql = StrictCharField(max_length=settings.NLSQL_MAX_SQL_LENGTH)
        target = StrictCharField(required=False, default="default", max_length=63)

        class Meta:
            ref_name = "ExplainRequest"

    class OutputSerializer(serializers.Serializer):
        sql = serializers.CharField()
        explanation = serializers.CharField()
        source = serializers.ChoiceField(choices=["llm", "plan"])
        tables = serializers.ListField(child=serializers.CharField())
        indexes = serializers.ListField(child=serializers.CharField())
        estimated_rows = serializers.FloatField()
        total_cost = serializers.FloatField()

        class Meta:
            ref_name = "ExplainResponse"

    @extend_schema(
        summary="Explain a SELECT in plain language (LLM, or a summary of its plan)",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = _validated_input(self.InputSerializer, request)
        try:
            checked = sql_check(data["sql"])
            tables_check_permitted(tables=checked.tables, target=data["target"], user=request.user)
            explanation = explain_query(data["sql"], data["target"])
        except (SqlRefused, QueryFailed) as exc:
            raise exceptions.ValidationError({"sql": [str(exc)]}) from None
        summary = explanation.summary
        return Response(
            self.OutputSerializer(
                {
                    "sql": explanation.sql,
                    "explanation": explanation.text,
                    "source": explanation.source,
                    "tables": summary.tables,
                    "indexes": summary.indexes,
                    "estimated_rows": summary.estimated_rows,
                    "total_cost": summary.total_cost,
                }
            ).data
        )


class TrainingApi(APIView):
    """Add documentation or a question-SQL pair to the retrieval memory."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["documentation", "question_sql"])
        target = StrictCharField(required=False, default="default", max_length=63)
        text = StrictCharField(required=False, max_length=settings.NLSQL_MAX_SQL_LENGTH)
        question = StrictCharField(required=False, max_length=settings.NLSQL_MAX_QUESTION_LENGTH)
        sql = StrictCharField(required=False, max_length=settings.NLSQL_MAX_SQL_LENGTH)

        class Meta:
            ref_name = "TrainingRequest"

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        target = serializers.CharField()
        text = serializers.CharField()
        question = serializers.CharField()
        sql = serializers.CharField()
        source = serializers.CharField()

        class Meta:
            ref_name = "TrainingItem"

    @extend_schema(
        summary="Train ask-the-database: documentation or a question with its SQL",
        request=InputSerializer,
        responses={201: OutputSerializer, **error_responses(400, 401, 403)},
    )
    def post(self, request):
        data = _validated_input(self.InputSerializer, request)
        common = {"target": data["target"], "source": "api", "created_by": request.user}
        try:
            if data["kind"] == "documentation":
                item = training_add_documentation(text=data.get("text", ""), **common)
            else:
                item = training_add_pair(
                    question=data.get("question", ""), sql=data.get("sql", ""), **common
                )
        except TrainingError as exc:
            raise exceptions.ValidationError({data["kind"]: [str(exc)]}) from None
        return Response(self.OutputSerializer(item).data, status=201)


class FeedbackApi(APIView):
    """Mark an answer correct (it becomes a trained pair) or wrong."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        feedback = serializers.ChoiceField(choices=["correct", "wrong"])

        class Meta:
            ref_name = "FeedbackRequest"

    class OutputSerializer(serializers.Serializer):
        log_id = serializers.IntegerField()
        feedback = serializers.CharField()
        trained_item_id = serializers.IntegerField(allow_null=True)

        class Meta:
            ref_name = "FeedbackRecorded"

    @extend_schema(
        summary="Record whether an answer was right; a correct one trains the question",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400, 401, 403, 404)},
    )
    def post(self, request, log_id: int):
        log = get_object_or_404(QuestionLog, pk=log_id)  # an unknown answer is a 404 first
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            item = question_log_feedback(
                log=log, feedback=serializer.validated_data["feedback"], user=request.user
            )
        except InvalidInput as exc:
            raise exceptions.ValidationError({"feedback": [str(exc)]}) from None
        return Response(
            self.OutputSerializer(
                {"log_id": log.pk, "feedback": log.feedback, "trained_item_id": item and item.pk}
            ).data
        )
