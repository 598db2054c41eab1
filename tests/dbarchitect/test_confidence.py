import pytest

from dbarchitect.confidence import PastOutcome, confidence_compute


def _compute(**overrides):
    inputs = {
        "cost_before": 1000.0,
        "cost_after": 10.0,
        "ms_before": 100.0,
        "ms_after": 10.0,
        "workload_share": 0.2,
        "past": [],
    }
    inputs.update(overrides)
    return confidence_compute(**inputs)


def test_confidence_known_inputs_weighted_sum():
    result = _compute()
    # 0.35 * 0.99 + 0.35 * 1 (10x) + 0.15 * 1 (20% >= 10%) + 0.15 * 0.5 (no past)
    assert result.total == pytest.approx(0.35 * 0.99 + 0.35 + 0.15 + 0.075, abs=1e-4)
    assert result.components["measured_speedup"].value == pytest.approx(10.0)


def test_confidence_speedup_is_log_scaled():
    # 100 ms -> 31.6 ms is half of the saturating 10x on a log scale.
    result = _compute(ms_after=100.0 / 10**0.5)
    assert result.components["measured_speedup"].score == pytest.approx(0.5, abs=1e-6)


def test_confidence_unmeasured_or_slower_scores_zero_speedup():
    unmeasured = _compute(ms_before=None, ms_after=None)
    slower = _compute(ms_before=10.0, ms_after=12.0)
    assert unmeasured.components["measured_speedup"].score == 0.0
    assert unmeasured.components["measured_speedup"].value is None
    assert slower.components["measured_speedup"].score == 0.0
    # Without a measurement even a perfect estimate stays under the 0.8 pull-request gate.
    assert unmeasured.total < 0.8


def test_confidence_past_outcomes_move_the_score():
    neutral = _compute()
    rejected = _compute(past=[PastOutcome(similarity=0.9, signal=-1.0)] * 2)
    gained = _compute(past=[PastOutcome(similarity=0.9, signal=1.0)])
    mixed = _compute(past=[PastOutcome(similarity=0.8, signal=1.0), PastOutcome(0.8, -1.0)])
    assert rejected.components["past_outcomes"].score == 0.0
    assert gained.components["past_outcomes"].score == 1.0
    assert mixed.components["past_outcomes"].score == pytest.approx(0.5)
    assert rejected.total < neutral.total < gained.total


def test_confidence_workload_share_saturates_and_cost_increase_scores_zero():
    small = _compute(workload_share=0.02)
    assert small.components["workload_share"].score == pytest.approx(0.2)
    worse = _compute(cost_after=2000.0)
    assert worse.components["cost_reduction"].score == 0.0
    assert worse.components["cost_reduction"].value == pytest.approx(-1.0)


def test_confidence_is_clamped_and_breakdown_is_json_ready():
    result = _compute()
    breakdown = result.breakdown()
    assert 0.0 <= result.total <= 1.0
    assert breakdown["total"] == result.total
    assert set(breakdown["components"]) == {
        "cost_reduction",
        "measured_speedup",
        "workload_share",
        "past_outcomes",
    }
    part = breakdown["components"]["cost_reduction"]
    assert part == {"value": pytest.approx(0.99), "weight": 0.35, "score": pytest.approx(0.99)}
    assert "log10" in breakdown["formula"]
    nothing = confidence_compute(
        cost_before=None,
        cost_after=None,
        ms_before=None,
        ms_after=None,
        workload_share=None,
        past=[],
    )
    assert nothing.total == pytest.approx(0.075)
