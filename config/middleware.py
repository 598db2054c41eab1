"""Request checks that run before any view: JSON errors under /api/, NULs in query strings."""

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from rest_framework.response import Response

from config.api import api_error_response, is_api_request
from config.parsing import parse_int

NUL = "\x00"
NUL_MESSAGE = "Null characters are not allowed."


def nul_query_parameter(request: HttpRequest) -> str | None:
    """The name of the first query parameter whose name or value holds a NUL, if any."""
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return name
    return None


def _too_large(request: HttpRequest) -> bool:
    """Whether the request is past Django's upload limits (body size, number of fields)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = parse_int(request.META.get("CONTENT_LENGTH") or "0")
    if limit is not None and length is not None and length > limit:
        return True
    try:
        request.GET  # noqa: B018 - parsing it counts the fields
    except TooManyFieldsSent:
        return True
    return False


def api_errors_as_json(get_response: Callable[[HttpRequest], HttpResponse]):
    """Every error under /api/ is JSON, whatever DEBUG says.

    With DEBUG on, Django answers an unknown URL, a crash or a suspicious request with its
    HTML debug page (handler400/404/500 never run); a view outside DRF answers 405 or a
    CSRF failure in HTML too. Such an answer is replaced by the API's JSON error of the
    same status; DRF's own responses already are JSON. A body past the upload limit is a
    413 before anything reads it, so the debug page cannot turn it into a 400.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if not is_api_request(request):
            return get_response(request)
        if _too_large(request):
            return api_error_response(413)
        response = get_response(request)
        if response.status_code < 400 or isinstance(response, Response | JsonResponse):
            return response
        replaced = api_error_response(response.status_code)
        if response.has_header("Allow"):
            replaced["Allow"] = response["Allow"]
        return replaced

    return middleware


def reject_nul_in_query(get_response: Callable[[HttpRequest], HttpResponse]):
    """A query string with a NUL character is a 400 before any view sees it.

    PostgreSQL text cannot hold NUL (U+0000). Forms and serializers refuse it in the values
    they read, but query strings also reach lookups that no form stands in front of (the
    admin's list filters, date hierarchy and autocomplete), where a NUL fails in the
    database as a 500.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        name = nul_query_parameter(request)
        if name is None:
            return get_response(request)
        if is_api_request(request):  # the API's error shape, as a serializer would answer
            return JsonResponse(
                {"error": f"{name}: {NUL_MESSAGE}", "detail": {name: [NUL_MESSAGE]}}, status=400
            )
        return HttpResponseBadRequest(
            f"Bad request: query parameter {name!r}: {NUL_MESSAGE}",
            content_type="text/plain; charset=utf-8",
        )

    return middleware
