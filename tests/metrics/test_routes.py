from django.urls import resolve

from config.health import healthz_view
from config.metrics import metrics_view


def test_config_urls_route_metrics_and_healthz():
    assert resolve("/metrics", urlconf="config.urls").func is metrics_view
    assert resolve("/healthz", urlconf="config.urls").func is healthz_view
