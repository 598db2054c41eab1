"""The project's routes as templates, walked from the URL resolver, for sweeps over every route."""

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

CONVERTERS = ("str", "int", "uuid", "slug", "path")


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
