"""Only the routes these tests exercise, as config/urls.py wires them, so the tests don't
depend on every other app's URLs importing (test_routes.py checks config/urls.py itself)."""

from django.urls import path

from config.health import healthz_view
from config.metrics import metrics_view

urlpatterns = [
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz_view, name="healthz"),
]
