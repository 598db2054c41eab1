"""Routes of the audits API, included under /api/audits/."""

from django.urls import path

from .api import AuditDetailApi, AuditListApi

app_name = "audits_api"

urlpatterns = [
    path("", AuditListApi.as_view(), name="list"),
    # str, not uuid: a malformed id gets the API's JSON 404, not the HTML one.
    path("<str:audit_id>/", AuditDetailApi.as_view(), name="detail"),
]
