from django.urls import path

from .api import AskApi, ExplainApi, FeedbackApi, TrainingApi

app_name = "nlsql"

urlpatterns = [
    path("ask", AskApi.as_view(), name="ask"),
    path("ask/<int:log_id>/feedback", FeedbackApi.as_view(), name="feedback"),
    path("explain", ExplainApi.as_view(), name="explain"),
    path("training", TrainingApi.as_view(), name="training"),
]
