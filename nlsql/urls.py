from django.urls import path

from .api import AskApi, ExplainApi

app_name = "nlsql"

urlpatterns = [
    path("ask", AskApi.as_view(), name="ask"),
    path("explain", ExplainApi.as_view(), name="explain"),
]
