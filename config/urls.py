from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz_view
from config.metrics import metrics_view

# Unknown URLs, oversized requests and crashes under /api/ answer in JSON like every other
# API error.
handler400 = "config.api.json_bad_request"
handler404 = "config.api.json_not_found"
handler500 = "config.api.json_server_error"

api_urlpatterns = [
    path("audits/", include("dbarchitect.urls")),
    path("optimizations/", include("optimizations.urls")),
    path("", include("nlsql.urls")),  # /api/ask, /api/explain
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api_urlpatterns)),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", healthz_view, name="healthz"),
]
