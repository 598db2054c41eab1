"""A query string with a NUL character is a 400 before any view sees it.

PostgreSQL text cannot hold NUL (U+0000). Forms and serializers refuse it in the values they
read, but query strings also reach lookups that no form stands in front of (the admin's list
filters, date hierarchy and autocomplete), where a NUL fails in the database as a 500.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from config.api import is_api_request

NUL = "\x00"
NUL_MESSAGE = "Null characters are not allowed."


def nul_query_parameter(request: HttpRequest) -> str | None:
    """The name of the first query parameter whose name or value holds a NUL, if any."""
    for name, values in request.GET.lists():
        if NUL in name or any(NUL in value for value in values):
            return name
    return None


def reject_nul_in_query(get_response: Callable[[HttpRequest], HttpResponse]):
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
