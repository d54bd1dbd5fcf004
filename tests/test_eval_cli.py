"""Specification of `agenttrace eval` and `agenttrace attribute` (run through click's CliRunner)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import whowhen_fixtures as fx  # noqa: E402

from agenttrace.attribution.cpu import CpuAttributor  # noqa: E402
from agenttrace.cli.eval import attribute_command, eval_command  # noqa: E402


@pytest.fixture
def data(tmp_path):
    return [str(p) for p in fx.write_dataset(tmp_path / "data", n_hand=2, n_algo=3, n_tracer=2)]


@pytest.fixture
def calls(monkeypatch):
    """Every (run_id, expected) the cpu attributor is asked about."""
    seen: list[tuple[str, str | None]] = []
    original = CpuAttributor.attribute

    def spy(self, trajectory):
        seen.append((trajectory.run_id, trajectory.expected))
        return original(self, trajectory)

    monkeypatch.setattr(CpuAttributor, "attribute", spy)
    return seen


def _run(cmd, args):
    result = CliRunner().invoke(cmd, args, catch_exceptions=False, terminal_width=200)
    return result


def test_eval_writes_predictions_and_prints_both_scorings(tmp_path, data, calls):
    out = tmp_path / "pred.json"
    result = _run(eval_command, [*data, "--attributor", "cpu", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    for text in ("Hand-Crafted", "Algorithm-Generated", "code-dev", "Who&When substring", "exact match",
                 "reward", "with G", "ECE", "expected calibration error", "uncertain"):
        assert text in result.output
    saved = json.loads(out.read_text())
    assert saved["attributor"] == "cpu"
    rows = saved["predictions"]
    assert len(rows) == 7 and len(calls) == 7
    assert {r["mode"] for r in rows} == {"with_G"}
    row = next(r for r in rows if r["id"] == "Algorithm-Generated/1")
    assert row["agent"] == "DataAnalysis_Expert" and row["step"] == 1
    assert row["label"] == {"agent": "DataAnalysis_Expert", "step": 1, "reason": fx.algorithm_generated()["mistake_reason"]}
    assert row["reason"]


def test_eval_puts_the_attributor_beside_the_trivial_baselines(tmp_path, data):
    result = _run(eval_command, [*data, "--out", str(tmp_path / "p.json"), "--no-progress", "--baselines"])
    assert result.exit_code == 0, result.output
    for text in ("beside the trivial baselines", "most frequent agent of run", "first error step",
                 "points over the strongest baseline", "95% interval", "paired bootstrap"):
        assert text in result.output
    report = json.loads(_run(eval_command, [*data, "--out", str(tmp_path / "p.json"), "--baselines", "--json"]).output)
    compared = report["baselines"]["with_G"]
    assert set(compared) == {"Hand-Crafted", "Algorithm-Generated", "code-dev", "all"}
    assert compared["all"]["n"] == 7
    assert compared["all"]["agent_acc_exact"] == report["scores"]["with_G"]["all"]["agent_acc_exact"]
    for subset in compared.values():
        assert [m["level"] for m in subset["margins"]] == ["agent", "step"]
        for m in subset["margins"]:
            best = subset["baselines"][m["baseline"]][f"{m['level']}_acc_exact"]
            assert best == max(b[f"{m['level']}_acc_exact"] for b in subset["baselines"].values())
            assert m["low"] <= m["margin"] <= m["high"]


def test_without_ground_truth_hides_expected(tmp_path, data, calls):
    out = tmp_path / "pred.json"
    result = _run(eval_command, [data[1], "--without-ground-truth", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "without G" in result.output
    assert calls and all(expected is None for _, expected in calls)


def test_both_runs_every_item_with_and_without_ground_truth(tmp_path, data, calls):
    out = tmp_path / "pred.json"
    result = _run(eval_command, [data[0], "--both", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)["scores"]
    assert set(scores) == {"with_G", "without_G"}
    assert scores["with_G"]["Hand-Crafted"]["n"] == 2
    assert sorted(e is None for _, e in calls) == [False, False, True, True]
    hc = scores["without_G"]["Hand-Crafted"]  # the cpu attributor states a probability and flags uncertainty
    assert 0.0 <= hc["ece"] <= 1.0 and hc["confident"] + hc["uncertain"] == 2


def test_eval_resumes_without_recomputing(tmp_path, data, calls):
    out = tmp_path / "pred.json"
    first = _run(eval_command, [*data, "--both", "--out", str(out), "--limit", "5", "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "partial" in first.output
    done_first = {r["key"]: r for r in json.loads(out.read_text())["predictions"]}
    assert len(done_first) == 5 and len(calls) == 5

    calls.clear()
    second = _run(eval_command, [*data, "--both", "--out", str(out), "--no-progress"])
    assert second.exit_code == 0, second.output
    assert "reused 5" in second.output
    rows = {r["key"]: r for r in json.loads(out.read_text())["predictions"]}
    assert len(rows) == 14 and len(calls) == 9
    for key, row in done_first.items():
        assert rows[key] == row  # kept as written, not recomputed
    recomputed = {(("without_G" if e is None else "with_G"), rid) for rid, e in calls}
    assert not {(r["mode"], r["id"]) for r in done_first.values()} & recomputed

    calls.clear()
    third = _run(eval_command, [*data, "--both", "--out", str(out), "--no-progress"])
    assert third.exit_code == 0 and calls == []


def test_eval_refuses_another_attributors_file(tmp_path, data):
    out = tmp_path / "pred.json"
    out.write_text(json.dumps({"attributor": "openai", "predictions": []}))
    result = CliRunner().invoke(eval_command, [data[0], "--out", str(out), "--no-progress"])
    assert result.exit_code != 0
    assert "openai" in result.output


def test_eval_reports_bad_data_clearly(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "1.json").write_text(json.dumps({"question": "q"}))
    result = CliRunner().invoke(eval_command, [str(bad), "--out", str(tmp_path / "p.json")])
    assert result.exit_code != 0
    assert "1.json" in result.output and "'history'" in result.output


def test_attribute_prints_the_verdict(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(fx.algorithm_generated()))
    result = _run(attribute_command, [str(path)])
    assert result.exit_code == 0, result.output
    assert "DataAnalysis_Expert" in result.output and "step: 1" in result.output
    assert "reason:" in result.output and "label:" in result.output
    said = " ".join(result.output.split())
    assert "instead: " in said and "state only values the task or your inputs give" in said  # the advice

    as_json = json.loads(_run(attribute_command, [str(path), "--json", "--attributor", "cpu"]).output)
    assert as_json["agent"] == "DataAnalysis_Expert" and as_json["step"] == 1
    assert as_json["score"]["step_exact"] is True


def test_attribute_reads_a_trajectory_dump(tmp_path):
    from agenttrace.data.datasets import from_whowhen

    traj = from_whowhen(fx.hand_crafted()).trajectory
    path = tmp_path / "traj.json"
    path.write_text(traj.model_dump_json())
    verdict = json.loads(_run(attribute_command, [str(path), "--json"]).output)
    assert verdict["agent"] in traj.agents


def test_help_texts_explain_the_commands():
    eval_help = CliRunner().invoke(eval_command, ["--help"]).output
    for text in ("Who&When", "--both", "--without-ground-truth", "resume", "--limit", "substring"):
        assert text in eval_help
    attr_help = CliRunner().invoke(attribute_command, ["--help"]).output
    assert "Who&When" in attr_help and "--attributor" in attr_help
