"""/metrics: django-prometheus's request/database metrics plus the agent's, for allowed clients.

A client may scrape when its address is in METRICS_ALLOWED_IPS (addresses or networks) or when
it sends `Authorization: Bearer <METRICS_BEARER_TOKEN>`. The address is the socket's
(REMOTE_ADDR), never X-Forwarded-For, which any client can write.
"""

import hmac
import ipaddress
from collections.abc import Iterable, Iterator
from functools import lru_cache

import prometheus_client
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import multiprocess
from prometheus_client.core import Metric

from dbarchitect.metrics import AgentMetricsCollector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def allowed_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parse METRICS_ALLOWED_IPS; a bad entry is a configuration error that names itself."""
    networks = []
    for entry in filter(None, (entry.strip() for entry in entries)):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"METRICS_ALLOWED_IPS entry {entry!r} is not an IP address or network: {exc}"
            ) from exc
    return tuple(networks)


def address_allowed(address: str, *, networks: Iterable[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def bearer_token_valid(authorization: str, *, token: str) -> bool:
    """Constant-time compare, so the response time says nothing about the token."""
    if not token:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_access_allowed(request: HttpRequest) -> bool:
    networks = allowed_networks(tuple(settings.METRICS_ALLOWED_IPS))
    if address_allowed(request.META.get("REMOTE_ADDR", ""), networks=networks):
        return True
    return bearer_token_valid(
        request.META.get("HTTP_AUTHORIZATION", ""), token=settings.METRICS_BEARER_TOKEN
    )


class _Scrape:
    """What one scrape collects: this process's (or all gunicorn workers') metrics + the agent's."""

    def __init__(self, *collectors) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def _process_registry() -> prometheus_client.CollectorRegistry:
    # Under gunicorn each worker process counts its own requests: in multiprocess mode the
    # workers write to PROMETHEUS_MULTIPROC_DIR and any one of them adds them all up here.
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
        return registry
    return prometheus_client.REGISTRY


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(request):
        return HttpResponse(
            "Forbidden: /metrics needs an address in METRICS_ALLOWED_IPS or "
            "Authorization: Bearer <METRICS_BEARER_TOKEN>.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    scrape = _Scrape(_process_registry(), AgentMetricsCollector())
    return HttpResponse(
        prometheus_client.generate_latest(scrape),  # type: ignore[arg-type]
        content_type=prometheus_client.CONTENT_TYPE_LATEST,
    )
