"""GET /api/optimizations/, its filters and pages, one item, and the similarity search."""

import datetime
import uuid

import pytest
from django.utils import timezone

from optimizations.models import OptimizationLog

pytestmark = pytest.mark.django_db

LIST = "/api/optimizations/"


def _recommendations(response) -> list[str]:
    return [item["recommendation"] for item in response.json()["results"]]


def test_list_is_largest_impact_first_and_names_the_target_without_its_url(
    staff_api, optimizations
):
    response = staff_api.get(LIST)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert _recommendations(response) == [log.recommendation for log in optimizations]
    first = body["results"][0]
    assert first["target"] == "default"
    assert first["audit"] == str(optimizations[0].audit_id)
    assert "plan_before" not in first and "embedding" not in first
    assert "postgres://" not in response.content.decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "proposed"}, [0, 2]),
        ({"kind": "rewrite"}, [2]),
        ({"target": "replica"}, [2, 3]),
        ({"min_confidence": "0.8"}, [0, 1]),
        ({"min_confidence": "0.7", "target": "default"}, [0, 1, 4]),
        ({"status": "proposed", "kind": "index", "target": "default"}, [0]),
    ],
)
def test_filters_select_exactly_the_matching_rows(staff_api, optimizations, params, expected):
    response = staff_api.get(LIST, params)
    assert response.status_code == 200
    assert _recommendations(response) == [optimizations[i].recommendation for i in expected]


def test_date_range_filters_by_creation_time(staff_api, optimizations):
    now = timezone.now()
    params = {
        "created_after": (now - datetime.timedelta(days=15)).isoformat(),
        "created_before": (now - datetime.timedelta(days=2)).isoformat(),
    }
    response = staff_api.get(LIST, params)
    assert _recommendations(response) == [
        optimizations[1].recommendation,
        optimizations[2].recommendation,
    ]
    # A plain date means midnight (UTC): everything of the last few days is after it.
    since = (now - datetime.timedelta(days=5)).date().isoformat()
    assert staff_api.get(LIST, {"created_after": since}).json()["count"] == 2


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("confidence", [3, 2, 4, 1, 0]),
        ("-confidence", [0, 1, 4, 2, 3]),
        ("-performance_gain", [1, 0, 2, 3, 4]),
        ("created_at", [4, 3, 2, 1, 0]),
        ("-impact", [0, 1, 2, 3, 4]),
        ("impact", [4, 3, 2, 1, 0]),
    ],
)
def test_ordering(staff_api, optimizations, ordering, expected):
    response = staff_api.get(LIST, {"ordering": ordering})
    assert _recommendations(response) == [optimizations[i].recommendation for i in expected]


def test_pages_split_the_list_without_overlap(staff_api, optimizations):
    first = staff_api.get(LIST, {"page_size": 2, "ordering": "-confidence"}).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["previous"] is None
    second = staff_api.get(first["next"]).json()
    third = staff_api.get(second["next"]).json()
    assert third["next"] is None
    seen = [item["id"] for page in (first, second, third) for item in page["results"]]
    assert sorted(seen) == sorted(str(log.id) for log in optimizations)
    last = staff_api.get(LIST, {"page_size": 2, "page": "last", "ordering": "-confidence"})
    assert last.json()["results"] == third["results"]


def test_a_page_past_the_end_is_a_json_404(staff_api, optimizations):
    response = staff_api.get(LIST, {"page": 99})
    assert response.status_code == 404
    assert response.json() == {"error": "Invalid page.", "detail": "not_found"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"kind": "magic"}, "kind"),
        ({"target": "nowhere"}, "target"),
        ({"min_confidence": "1.5"}, "min_confidence"),
        ({"min_confidence": "abc"}, "min_confidence"),
        ({"min_confidence": "nan"}, "min_confidence"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "2026-02-01", "created_before": "2026-01-01"}, "created_before"),
        ({"ordering": "id; DROP TABLE x"}, "ordering"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"page_size": "1000"}, "page_size"),
        ({"page_size": "-1"}, "page_size"),
        ({"page_size": "\u00b2"}, "page_size"),
        ({"page": "\u00b2"}, "page"),
    ],
)
def test_bad_filters_are_a_400_naming_the_field(staff_api, optimizations, params, field):
    response = staff_api.get(LIST, params)
    assert response.status_code == 400
    body = response.json()
    assert field in body["detail"]
    assert body["error"].startswith(f"{field}: ")


def test_unknown_target_names_it(staff_api, targets):
    body = staff_api.get(LIST, {"target": "nowhere"}).json()
    assert body["error"] == "target: Unknown target 'nowhere'."


def test_detail_has_plans_and_the_confidence_breakdown(staff_api, optimizations):
    log = optimizations[0]
    breakdown = {
        "formula": "0.5*cost_reduction + 0.5*measured_speedup",
        "components": {"cost_reduction": {"value": 0.9, "weight": 0.5, "score": 0.45}},
        "total": 0.92,
    }
    plan = {"Plan": {"Node Type": "Seq Scan", "Total Cost": 1234.5}}
    OptimizationLog.objects.filter(pk=log.pk).update(
        confidence_breakdown=breakdown, plan_before=plan, measured_ms_before=12.5
    )
    response = staff_api.get(f"{LIST}{log.id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(log.id)
    assert body["confidence_breakdown"] == breakdown
    assert body["plan_before"] == plan
    assert body["measured_ms_before"] == 12.5
    assert body["target"] == "default"


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_id_is_a_json_404(staff_api, optimizations, bad_id):
    response = staff_api.get(f"{LIST}{bad_id}/")
    assert response.status_code == 404
    assert response.json()["detail"] == "not_found"
    assert bad_id in response.json()["error"]


def test_similar_returns_the_nearest_first_with_similarity(staff_api, optimizations):
    response = staff_api.get(
        f"{LIST}similar/", {"query": "look up a user by lower-cased email", "limit": 3}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    results = body["results"]
    assert results[0]["id"] == str(optimizations[0].id)
    similarities = [item["similarity"] for item in results]
    assert similarities == sorted(similarities, reverse=True)
    assert similarities[0] > similarities[-1]
    assert all(-1.0 <= value <= 1.0 for value in similarities)


def test_similar_finds_the_pagination_rewrite_for_an_offset_query(staff_api, optimizations):
    response = staff_api.get(
        f"{LIST}similar/",
        {"query": "SELECT * FROM demo_behavior_log ORDER BY timestamp OFFSET 5000 LIMIT 50"},
    )
    assert response.json()["results"][0]["id"] == str(optimizations[2].id)
    assert response.json()["count"] == 5  # default limit 5, five stored


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "x" * 2001}, "query"),
        ({"query": "email", "limit": "0"}, "limit"),
        ({"query": "email", "limit": "51"}, "limit"),
        ({"query": "email", "limit": "five"}, "limit"),
    ],
)
def test_similar_rejects_bad_input(staff_api, params, field):
    response = staff_api.get(f"{LIST}similar/", params)
    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_the_schema_documents_impact_as_the_default_ordering(staff_api):
    schema = staff_api.get("/api/schema/", {"format": "json"}).json()
    parameters = schema["paths"][LIST]["get"]["parameters"]
    ordering = next(p for p in parameters if p["name"] == "ordering")
    assert ordering["schema"]["enum"][:2] == ["-impact", "impact"]
    assert ordering["schema"]["default"] == "-impact"
    assert "Default -impact" in ordering["description"]
    fields = schema["components"]["schemas"]["Optimization"]["properties"]
    assert {"impact", "impact_basis"} <= set(fields)
