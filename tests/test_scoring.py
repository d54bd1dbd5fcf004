"""Specification of agenttrace.data.scoring: the Who&When substring rule, exact match and AgenTracer's reward."""

from __future__ import annotations

import math

import pytest

from agenttrace.models import Label
from agenttrace.data.scoring import (
    Scoreboard,
    exact_agent_correct,
    expected_calibration_error,
    exact_step_correct,
    multigranular_reward,
    paired_bootstrap_interval,
    score,
    whowhen_agent_correct,
    whowhen_step_correct,
)


def test_whowhen_agent_rule_is_containment_of_the_true_name():
    assert whowhen_agent_correct("Orchestrator (thought)", "Orchestrator")
    assert whowhen_agent_correct("WebSurfer", "WebSurfer")
    assert not whowhen_agent_correct("Web", "WebSurfer")
    assert not whowhen_agent_correct(None, "WebSurfer")


def test_whowhen_step_rule_is_substring_and_so_lenient():
    assert whowhen_step_correct(1, 1)
    assert whowhen_step_correct(12, 1)  # the quirk: "1" in "12"
    assert whowhen_step_correct("21", 1)
    assert whowhen_step_correct(10, 0)
    assert not whowhen_step_correct(2, 1)
    assert not whowhen_step_correct(None, 1)


def test_exact_match_is_strict():
    assert exact_agent_correct("WebSurfer", "WebSurfer")
    assert exact_agent_correct(" WebSurfer ", "WebSurfer")
    assert not exact_agent_correct("Orchestrator (thought)", "Orchestrator")
    assert exact_step_correct(12, 12) and exact_step_correct("12", 12)
    assert not exact_step_correct(12, 1)
    assert not exact_step_correct(None, 1) and not exact_step_correct("x", 1) and not exact_step_correct(True, 1)


def test_reward_values():
    label = Label(agent="A", step=5)
    assert multigranular_reward("A", 5, label) == pytest.approx(1.0)
    assert multigranular_reward("B", 5, label) == pytest.approx(0.5)
    assert multigranular_reward("A", 6, label) == pytest.approx(0.5 + 0.5 * math.exp(-0.5))
    assert multigranular_reward("A", 3, label) == pytest.approx(0.5 + 0.5 * math.exp(-2.0))
    assert multigranular_reward("B", 7, label) == pytest.approx(0.5 * math.exp(-2.0))
    assert multigranular_reward("A", "5", label) == pytest.approx(1.0)


@pytest.mark.parametrize(("agent", "step"), [(None, 5), ("A", None), ("", 5), ("A", "five"), (3, 5), ("A", 5.5)])
def test_reward_is_zero_when_the_prediction_is_malformed(agent, step):
    assert multigranular_reward(agent, step, Label(agent="A", step=5)) == 0.0


def test_scoreboard_aggregates_per_subset_both_ways():
    board = Scoreboard()
    board.add_prediction("hc", "WebSurfer", 12, Label(agent="WebSurfer", step=1))  # substring-only step hit
    board.add_prediction("hc", "Orchestrator (thought)", 3, Label(agent="Orchestrator", step=3))
    board.add_prediction("ag", None, None, Label(agent="X", step=0))
    summ = board.summary()
    assert summ["hc"]["n"] == 2
    assert summ["hc"]["agent_acc_whowhen"] == 1.0
    assert summ["hc"]["agent_acc_exact"] == 0.5
    assert summ["hc"]["step_acc_whowhen"] == 1.0
    assert summ["hc"]["step_acc_exact"] == 0.5
    assert summ["hc"]["mean_reward"] == pytest.approx((0.5 + 0.5 * math.exp(-60.5) + 0.5) / 2)
    assert summ["ag"] == {"n": 1, "agent_acc_whowhen": 0.0, "step_acc_whowhen": 0.0, "agent_acc_exact": 0.0,
                          "step_acc_exact": 0.0, "mean_reward": 0.0, "ece": None, "confident": None, "uncertain": None,
                          "step_acc_exact_uncertain": None, "step_acc_exact_confident": None}
    assert summ["all"]["n"] == 3


def test_calibration_error_is_the_weighted_gap_between_stated_probability_and_hits():
    assert expected_calibration_error([0.9, 0.9, 0.3, 0.3], [True, True, False, True]) == pytest.approx(
        (2 * 0.1 + 2 * 0.2) / 4)  # the 0.9 bin hits 100%, the 0.3 bin 50%
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0
    with pytest.raises(ValueError):
        expected_calibration_error([], [])


def test_scoreboard_reports_calibration_and_the_uncertain_verdicts_apart():
    board = Scoreboard()
    label = Label(agent="A", step=2)
    for step, confidence, uncertain in [(2, 0.8, False), (2, 0.8, False), (1, 0.8, False), (1, 0.2, True), (2, 0.2, True)]:
        board.add("s", score("A", step, label, confidence=confidence, uncertain=uncertain))
    board.add("t", score("A", 2, label))  # a verdict that states no probability
    summ = board.summary()
    assert summ["s"]["ece"] == pytest.approx((3 * abs(0.8 - 2 / 3) + 2 * abs(0.2 - 0.5)) / 5)
    assert (summ["s"]["confident"], summ["s"]["uncertain"], summ["s"]["step_acc_exact_uncertain"]) == (3, 2, 0.5)
    assert summ["s"]["step_acc_exact_confident"] == pytest.approx(2 / 3)
    assert summ["t"]["ece"] is None and summ["t"]["uncertain"] is None
    assert summ["all"]["ece"] == summ["s"]["ece"] and (summ["all"]["confident"], summ["all"]["uncertain"]) == (3, 2)


def test_score_bundles_every_rule():
    s = score("WebSurfer", 12, Label(agent="WebSurfer", step=1))
    assert (s.agent_whowhen, s.step_whowhen, s.agent_exact, s.step_exact) == (True, True, True, False)


def test_paired_bootstrap_interval_of_a_margin():
    assert paired_bootstrap_interval([True, False] * 10, [True, False] * 10) == (0.0, 0.0)
    assert paired_bootstrap_interval([True] * 8, [False] * 8) == (1.0, 1.0)
    ours, theirs = [True] * 12 + [False] * 8, [True] * 9 + [False] * 11  # 0.60 against 0.45 on the same 20 runs
    low, high = paired_bootstrap_interval(ours, theirs)
    assert 0.0 <= low < 0.15 < high < 0.4  # it holds the observed margin; ours hits every run theirs does: never < 0
    assert paired_bootstrap_interval(ours, theirs) == (low, high)  # seeded: the same report twice
    with pytest.raises(ValueError):
        paired_bootstrap_interval([True], [True, False])
