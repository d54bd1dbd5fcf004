"""`agenttrace inject` (through click's CliRunner): successful trajectories in, labelled injected failures out."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from agenttrace.cli import main
from agenttrace.data.datasets import load_any, load_tracertraj, load_whowhen_dir
from tests.conftest import flush

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "inject"
WHOWHEN = FIXTURES / "whowhen"
JSONL = FIXTURES / "success.jsonl"


def invoke(*args: str, progress: bool = False):
    flags = [] if progress else ["--no-progress"]
    return CliRunner().invoke(main, ["inject", *flags, *args], terminal_width=200)


def originals() -> dict:
    return {json.loads(line)["question"]: json.loads(line) for line in JSONL.read_text().splitlines() if line}


def assert_labels_point_at_the_perturbed_step(items) -> None:
    sources = originals()
    assert items
    for item in items:
        original = sources[item.trajectory.task]["history"]
        steps = item.trajectory.steps
        assert len(steps) == len(original)
        changed = [i for i, (s, o) in enumerate(zip(steps, original)) if s.content != o["content"]]
        assert changed == [item.label.step], item.id  # exactly the labelled step differs
        assert item.label.agent == steps[item.label.step].agent
        assert item.label.reason.startswith("injected ")
        assert item.trajectory.steps[item.label.step].agent != "human"


def test_folder_to_jsonl_loads_back_with_labels_on_the_perturbed_step(tmp_path):
    out = tmp_path / "injected.jsonl"
    result = invoke(str(WHOWHEN), "--out", str(out), "--per-trajectory", "2")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "unconfirmed" in result.output
    items = load_tracertraj(out)
    assert_labels_point_at_the_perturbed_step(items)
    raw = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["confirmed"] is False for r in raw)
    assert len(raw) == len(items) <= 4
    per_source: dict[str, set] = {}
    for r in raw:
        per_source.setdefault(r["question"], set()).add((r["mistake_step"], r["injected_kind"]))
    assert all(len(pairs) <= 2 for pairs in per_source.values())
    assert sum(len(p) for p in per_source.values()) == len(raw)  # distinct step/kind pairs per trajectory


def test_jsonl_to_whowhen_folder_with_chosen_kind_and_seed_is_reproducible(tmp_path):
    args = [str(JSONL), "--kind", "off_by_one", "--kind", "wrong_number", "--seed", "7"]
    first, second = tmp_path / "a", tmp_path / "b"
    assert invoke(*args, "--out-dir", str(first)).exit_code == 0
    with_bar = invoke(*args, "--out-dir", str(second), progress=True)  # the bar changes nothing written
    assert with_bar.exit_code == 0 and "injecting" in with_bar.output
    items = load_whowhen_dir(first)
    assert_labels_point_at_the_perturbed_step(items)
    assert {json.loads(p.read_text())["injected_kind"] for p in first.glob("*.json")} <= {"off_by_one", "wrong_number"}
    assert [p.read_text() for p in sorted(first.glob("*.json"))] == [p.read_text() for p in sorted(second.glob("*.json"))]
    assert len(load_any(first)) == len(items)


def test_labelled_failures_are_skipped_and_only_failures_is_a_clear_error(tmp_path):
    result = invoke(str(FIXTURES / "labelled_failure.json"), "--out", str(tmp_path / "x.jsonl"))
    assert result.exit_code == 1
    assert "no successful trajectory" in result.output and "mistake label" in result.output
    assert not (tmp_path / "x.jsonl").exists()

    ok = invoke(str(FIXTURES / "labelled_failure.json"), str(JSONL), "--out", str(tmp_path / "y.jsonl"))
    assert ok.exit_code == 0, ok.output
    assert "skipped 1" in ok.output
    loaded = load_tracertraj(tmp_path / "y.jsonl")
    assert loaded and not any("failed-1" in i.id for i in loaded)


def test_bad_input_gives_a_clear_error(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"history": [{"name": "A", "content": "x = 1"}]}\nnot json\n')
    result = invoke(str(broken), "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 1
    assert "cannot read the input" in result.output and "broken.jsonl:2" in result.output

    no_agent = tmp_path / "no_agent.json"
    no_agent.write_text('{"history": [{"content": "hi"}]}')
    result = invoke(str(no_agent), "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 1 and "neither 'name' nor 'role'" in result.output

    missing = invoke(str(tmp_path / "nope.json"), "--out", str(tmp_path / "o.jsonl"))
    assert missing.exit_code == 2 and "does not exist" in missing.output

    no_out = invoke(str(JSONL))
    assert no_out.exit_code == 2 and "exactly one of --out" in no_out.output
    both = invoke(str(JSONL), "--out", str(tmp_path / "o.jsonl"), "--out-dir", str(tmp_path / "d"))
    assert both.exit_code == 2
    wrong_suffix = invoke(str(JSONL), "--out", str(tmp_path / "o.json"))
    assert wrong_suffix.exit_code == 2 and ".jsonl" in wrong_suffix.output
    nothing = invoke("--out", str(tmp_path / "o.jsonl"))
    assert nothing.exit_code == 2 and "--endpoint" in nothing.output
    bad_kind = invoke(str(JSONL), "--kind", "typo", "--out", str(tmp_path / "o.jsonl"))
    assert bad_kind.exit_code == 2 and "off_by_one" in bad_kind.output

    no_tools = invoke(str(JSONL), "--kind", "wrong_argument", "--out", str(tmp_path / "o.jsonl"))
    assert no_tools.exit_code == 1 and "nothing written" in no_tools.output
    assert not (tmp_path / "o.jsonl").exists()


def test_no_collector_is_a_clear_error(tmp_path):
    from agenttrace.local_collector import free_port

    result = invoke("--endpoint", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 1 and "no collector at" in result.output


def test_successful_runs_from_a_collector(collector, traced, tmp_path):
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "examples" / "research_team.py"
    spec = importlib.util.spec_from_file_location("research_team_inject_test", path)
    team_mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = team_mod
    spec.loader.exec_module(team_mod)
    run = team_mod.ResearchTeam(seed_error=False).solve()
    flush()
    traj, _ = collector.wait_run(run.run_id)
    assert traj.outcome.value == "success"

    out = tmp_path / "from_collector.jsonl"
    result = invoke("--endpoint", collector.endpoint, "--outcome", "success", "--service", traced.service_name,
                    "--out", str(out), "--per-trajectory", "2")
    assert result.exit_code == 0, result.output
    items = [i for i in load_tracertraj(out) if run.run_id in i.id]
    assert items
    for item in items:
        step = item.label.step
        assert item.trajectory.steps[step].agent == traj.steps[step].agent == item.label.agent
        assert item.trajectory.steps[step].render() != traj.steps[step].render()
