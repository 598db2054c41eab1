"""What every API view shares: JSON errors, pagination, permissions and their OpenAPI shapes."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.parsing import parse_int

# The most rows one page of a list returns, whatever the client asks for.
MAX_PAGE_SIZE = 200


class Conflict(exceptions.APIException):
    """The request is valid but the resource's state does not allow it (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The resource's current state does not allow this."
    default_code = "conflict"


class QueueUnavailable(exceptions.APIException):
    """The Celery broker cannot be reached, so nothing was queued (503)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The task queue is unavailable; nothing was queued. Try again later."
    default_code = "queue_unavailable"


class IsSuperUser(permissions.BasePermission):
    """Only superusers: applying DDL to a database is more than reviewing it."""

    message = "Only a superuser may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_superuser)


class ApiAutoSchema(AutoSchema):
    """OpenAPI components of nested serializers carry their view's name.

    HackSoft-style views each nest an InputSerializer and an OutputSerializer; named after
    the class alone, two views' serializers would collide as one "Input" component.
    `AskApi.InputSerializer` becomes "AskInput". A Meta.ref_name still wins.
    """

    def get_serializer_name(self, serializer, direction) -> str:
        cls = serializer.__class__
        outer = cls.__qualname__.rpartition(".")[0]
        if outer and "<" not in outer:  # nested in a class, not in a function
            return outer.replace(".", "").removesuffix("Api") + cls.__name__
        return cls.__name__


def _first_message(detail) -> str:
    """The first error message in a DRF error structure, prefixed with its field."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error as {"error": message, "detail": field errors or error code}."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"error": _first_message(exc.detail), "detail": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        response.data = {
            "error": _first_message(exc.detail),
            "detail": codes if isinstance(codes, str) else "error",
        }
    else:  # Django's Http404 / PermissionDenied, already turned into a response by DRF
        message = response.data.get("detail", "Error.")
        code = "not_found" if response.status_code == 404 else "permission_denied"
        response.data = {"error": str(message), "detail": code}
    return response


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# What an API error without a message of its own says, by status code.
API_ERRORS = {
    400: ("Bad request.", "bad_request"),
    401: ("Authentication required.", "not_authenticated"),
    403: ("Forbidden.", "permission_denied"),
    404: ("Not found.", "not_found"),
    405: ("Method not allowed.", "method_not_allowed"),
    500: ("Server error.", "server_error"),
}


def too_large_message() -> str:
    megabytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / (1024 * 1024)
    return (
        f"The request is too large: at most {megabytes:.1f} MB of body and "
        f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."
    )


def api_error_response(status_code: int) -> JsonResponse:
    """The API's JSON error for a status code; never a detail an error page could leak."""
    if status_code == 413:
        message, code = too_large_message(), "request_too_large"
    else:
        fallback = ("Server error.", "server_error") if status_code >= 500 else ("Error.", "error")
        message, code = API_ERRORS.get(status_code, fallback)
    return JsonResponse({"error": message, "detail": code}, status=status_code)


def json_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Unknown URLs under /api/ answer in JSON like every other API error."""
    if is_api_request(request):
        return api_error_response(404)
    return defaults.page_not_found(request, exception)


def json_bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 400s (an oversized body, a suspicious request): JSON under /api/, and a body
    past the upload limits is a 413 that says the limits. Other reasons stay unexplained:
    their messages can name settings (ALLOWED_HOSTS)."""
    too_large = isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent)
    if is_api_request(request):
        return api_error_response(413 if too_large else 400)
    if too_large:
        return HttpResponse(
            too_large_message(), status=413, content_type="text/plain; charset=utf-8"
        )
    return defaults.bad_request(request, exception)


def json_server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return api_error_response(500)
    return defaults.server_error(request)


class ApiPagination(PageNumberPagination):
    """Page numbers, with ?page_size= up to MAX_PAGE_SIZE; a malformed page is a 400."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = parse_int(raw)
        if size is None or not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {"page_size": [f"Must be an integer from 1 to {self.max_page_size}."]}
            )
        return size

    def paginate_queryset(self, queryset, request, view=None):
        raw = request.query_params.get(self.page_query_param, "1")
        page = parse_int(raw)
        if raw not in self.last_page_strings and (page is None or page < 1):
            raise exceptions.ValidationError({"page": ["Must be a positive integer or 'last'."]})
        # A page past the last one stays DRF's 404 "Invalid page."
        return super().paginate_queryset(queryset, request, view)


class PageQuerySerializer(serializers.Serializer):
    """The pagination query parameters, for the OpenAPI schema."""

    page = serializers.IntegerField(required=False, min_value=1, help_text="1-based page number.")
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, help_text="Rows per page."
    )


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong, in one sentence.")
    detail = serializers.JSONField(
        help_text="Per-field messages for invalid input, otherwise an error code."
    )


_ERROR_DESCRIPTIONS = {
    400: "Invalid input: `detail` maps each field to its messages.",
    401: "No or invalid credentials (token or session).",
    403: "Authenticated but not allowed (staff only; apply needs a superuser).",
    404: "No such resource.",
    409: "The resource's state does not allow this transition.",
    503: "The task queue (Redis) is unreachable: nothing was queued or looked up.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error status codes, all with the JSON error shape."""
    return {
        code: OpenApiResponse(response=ErrorSerializer, description=_ERROR_DESCRIPTIONS[code])
        for code in codes
    }


def paginated(item: type[serializers.Serializer], *, name: str) -> serializers.Serializer:
    """The OpenAPI shape of one page of `item`s."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def paginate(*, queryset, request, view, serializer: type[serializers.Serializer]) -> Response:
    """One page of a queryset, serialized, in the paginated shape."""
    paginator = ApiPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)
