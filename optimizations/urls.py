"""Routes of the optimizations API, included under /api/optimizations/."""

from django.urls import path

from .api import (
    OptimizationApplyApi,
    OptimizationApproveApi,
    OptimizationDetailApi,
    OptimizationListApi,
    OptimizationRejectApi,
    OptimizationSimilarApi,
)

app_name = "optimizations_api"

urlpatterns = [
    path("", OptimizationListApi.as_view(), name="list"),
    path("similar/", OptimizationSimilarApi.as_view(), name="similar"),
    # str, not uuid: a malformed id gets the API's JSON 404, not the HTML one.
    path("<str:optimization_id>/", OptimizationDetailApi.as_view(), name="detail"),
    path("<str:optimization_id>/approve/", OptimizationApproveApi.as_view(), name="approve"),
    path("<str:optimization_id>/reject/", OptimizationRejectApi.as_view(), name="reject"),
    path("<str:optimization_id>/apply/", OptimizationApplyApi.as_view(), name="apply"),
]
