"""The self-improvement simulation through the product path: traced runs, a real collector, on_feedback, lessons."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import agenttrace

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "self_improvement.py"


def load_example():
    spec = importlib.util.spec_from_file_location("self_improvement_example_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rounds_through_the_collector_deliver_every_verdict_and_the_blamed_agent_gets_its_lesson(capsys):
    ex = load_example()
    n_tasks, rounds = 5, 2
    results = ex.main(n_tasks=n_tasks, rounds=rounds, seed=0, attributor_name="cpu", mode="collector")
    assert agenttrace.setup.active() is None, "main() must undo its instrumentation"

    by_name = {r["condition"]: r for r in results}
    assert set(by_name) == {"attr:cpu", "attr:oracle", "retry", "none"}
    for name, res in by_name.items():
        assert len(res["rates"]) == rounds, name
        assert all(0.0 <= x <= 1.0 for x in res["rates"]), name

    out = capsys.readouterr().out
    assert "through a collector" in out
    row = next(line for line in out.splitlines() if line.startswith("attr:cpu "))
    assert row.count("%") >= rounds  # one success rate per round

    attr = by_name["attr:cpu"]
    # Every failed run (as the collector judged it) got its verdict through on_feedback, in order.
    assert attr["failed_runs"], "the injected faults should make some runs fail"
    assert attr["missing_verdicts"] == []
    assert [v["run_id"] for v in attr["verdicts"]] == attr["failed_runs"]
    for name in ("retry", "none"):
        assert by_name[name]["missing_verdicts"] == []
        assert len(by_name[name]["verdicts"]) == len(by_name[name]["failed_runs"])

    # Each decided verdict left a lesson for the blamed agent in the collector's store, and the team fetched
    # it and put it into that agent's system message on a later run.
    decided = [v for v in attr["verdicts"] if v["agent"] is not None]
    assert decided
    assert sum(attr["lessons"].values()) == len(decided)
    last_run_prefix = f"attribution-{rounds - 1}-{n_tasks - 1}-"
    checked = 0
    for verdict in decided:
        if verdict["run_id"].startswith(last_run_prefix):
            continue  # no later run to apply it in
        assert verdict["run_id"] in attr["lessons_applied"].get(verdict["agent"], []), verdict
        checked += 1
    assert checked
    # A lesson goes only to the agent its verdict blamed.
    blamed = {v["run_id"]: v["agent"] for v in decided}
    for agent, run_ids in attr["lessons_applied"].items():
        assert all(blamed[r] == agent for r in run_ids)


def test_inprocess_mode_still_runs_and_reports_per_round():
    ex = load_example()
    results = ex.main(n_tasks=6, rounds=2, seed=1, mode="inprocess")
    assert [r["condition"] for r in results] == ["attr:cpu", "attr:oracle", "retry", "none"]
    assert all(len(r["rates"]) == 2 for r in results)
    assert results[1]["attribution_accuracy"] == 1.0
