"""The project's routes as templates, walked from the URL resolver, for sweeps over every route."""

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

CONVERTERS = ("str", "int", "uuid", "slug", "path")
# Ids no route may answer with a 500, already percent-encoded for a path.
HOSTILE_PATH_IDS = {
    "nul": "a%00b",
    "not_an_id": "not-an-id",
    "huge_int": str(10**30),
    "negative": "-1",
    "float": "1.5",
    "unknown_uuid": "00000000-0000-0000-0000-000000000000",
    "invalid_utf8": "%ED%A0%80",
}


def route_templates(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every path() route as "/api/items/{id}/"; converters become {name}.

    Regex routes (the admin's app index) have no template and are left out.
    """
    routes = []
    for pattern in (resolver or get_resolver()).url_patterns:
        if not isinstance(pattern.pattern, RoutePattern):
            continue
        route = str(pattern.pattern)
        for name in pattern.pattern.converters:
            for converter in CONVERTERS:
                route = route.replace(f"<{converter}:{name}>", f"{{{name}}}")
            route = route.replace(f"<{name}>", f"{{{name}}}")
        if isinstance(pattern, URLResolver):
            routes += route_templates(pattern, prefix + route)
        elif isinstance(pattern, URLPattern):
            routes.append("/" + prefix + route)
    return routes
