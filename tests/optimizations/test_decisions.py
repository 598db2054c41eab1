import pytest
from django.core.management import call_command

from dbarchitect.models import Target
from optimizations.decisions import DecisionError, recommendation_approve, recommendation_reject

from .apply_fixtures import recommendation


@pytest.mark.django_db
def test_approve_then_reject_and_the_transitions_not_allowed(staff_user):
    log = recommendation("CREATE INDEX x ON dec_orders (customer_id)")
    approved = recommendation_approve(recommendation=log, user=staff_user)
    assert approved.status == "approved" and approved.decided_by == staff_user
    with pytest.raises(DecisionError, match="Cannot approve a recommendation that is approved"):
        recommendation_approve(recommendation=log, user=staff_user)
    rejected = recommendation_reject(recommendation=log, user=staff_user, reason=" too big ")
    assert rejected.status == "rejected" and rejected.details["reject_reason"] == "too big"
    with pytest.raises(DecisionError, match="Cannot reject a recommendation that is rejected"):
        recommendation_reject(recommendation=log, user=staff_user)


@pytest.mark.django_db
def test_outcome_thresholds(settings):
    from optimizations.decisions import outcome_judge

    assert outcome_judge(before_ms=10.0, after_ms=8.0) == "gain"
    assert outcome_judge(before_ms=10.0, after_ms=9.0) == "no_gain"
    assert outcome_judge(before_ms=10.0, after_ms=11.0) == "regression"


@pytest.mark.django_db
def test_the_models_match_the_migrations():
    call_command("makemigrations", "optimizations", "--check", "--dry-run", verbosity=0)
    assert Target.objects.filter(name="default").exists()
