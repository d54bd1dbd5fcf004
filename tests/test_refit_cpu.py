"""A team refits the ``cpu`` attributor on its own reviewed runs and a collector loads it: failed runs of a small
team in one collector, their verdicts corrected through the review API, `agenttrace train --attributor cpu
--collector URL`, and a second collector that attributes a new failed run with the refitted model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import agenttrace
from agenttrace.attribution.cpu import FEATURES, CpuAttributor
from agenttrace.attribution.cpu_fit import MIN_RUNS
from agenttrace.cli import main as cli
from agenttrace.local_collector import LocalCollector, free_port
from tests.conftest import flush

SERVICE = "order-team"
RUNS = 12
# The team's own truth, which its reviewers enter: the Writer should have checked the total against the order.
DECISIVE_STEP = 3


def order_run(i: int) -> str:
    """One failed run of the order team: the Clerk quotes a price off by one, the Calculator multiplies it, the
    Writer passes the total on unchecked. Returns the run id."""
    quantity, price = 2 + i % 5, 10 + 3 * i
    with agenttrace.run("order", task=f"What do {quantity} boxes cost at the list price?",
                        expected=str(quantity * price)) as run:
        with agenttrace.agent_step("Planner", input=f"What do {quantity} boxes cost?") as step:
            step.output("Clerk: look up the box price. Calculator: multiply it by the quantity. Writer: report it.")
            step.transfer("Clerk")
        with agenttrace.agent_step("Clerk") as step:
            with agenttrace.tool_call("price_list", {"item": "box"}) as call:
                call.result(str(price))
            step.output(f"A box costs {price + 1}.")
            step.transfer("Calculator")
        with agenttrace.agent_step("Calculator") as step:
            with agenttrace.tool_call("calculator", {"expression": f"{quantity} * {price + 1}"}) as call:
                call.result(str(quantity * (price + 1)))
            step.output(f"{quantity} * {price + 1} = {quantity * (price + 1)}")
            step.transfer("Writer")
        with agenttrace.agent_step("Writer") as step:
            step.output(f"The boxes cost {quantity * (price + 1)}.")
        run.finish(str(quantity * (price + 1)))
    flush()
    return run.run_id


def fresh_collector(workdir: Path, *args: str) -> LocalCollector:
    """A collector of its own (the session's one holds other tests' reviews) with the cpu attributor."""
    return LocalCollector(workdir / "agenttrace.db", attributor="cpu", log_file=workdir / "collector.log",
                          extra_args=("--settle", "0.2", *args))


@pytest.fixture(scope="module")
def team_collector(tmp_path_factory):
    with fresh_collector(tmp_path_factory.mktemp("team-collector")) as c:
        yield c


def send_runs(collector: LocalCollector, indices: range) -> list[str]:
    agenttrace.instrument(endpoint=collector.endpoint, service_name=SERVICE, frameworks=[])
    try:
        return [order_run(i) for i in indices]
    finally:
        agenttrace.uninstrument()


@pytest.fixture(scope="module")
def reviewed(team_collector):
    """RUNS failed runs, each verdict corrected by a reviewer to the Writer's step; the verdicts the shipped model
    gave them."""
    verdicts = []
    for run_id in send_runs(team_collector, range(RUNS)):
        _, attributions = team_collector.wait_run(run_id, verdict=True)
        verdicts.append(attributions[-1])
        resp = httpx.post(f"{team_collector.endpoint}/api/v1/runs/{run_id}/review", timeout=10,
                          json={"step": DECISIVE_STEP, "note": "the Writer reports totals unchecked"})
        assert resp.status_code == 200, resp.text
    return verdicts


def train(*args: str):
    return CliRunner().invoke(cli, ["train", "--attributor", "cpu", *args])


def test_a_refitted_model_is_loaded_by_a_collector_and_blames_what_the_team_reviewed(team_collector, reviewed,
                                                                                         tmp_path):
    assert all(v.step != DECISIVE_STEP for v in reviewed)  # the shipped model blames another step
    model_file = tmp_path / "m.json"
    result = train("--collector", team_collector.endpoint, "--out", str(model_file))
    assert result.exit_code == 0, result.output
    assert f"fitted on {RUNS} labelled runs from 1 source(s)" in result.output
    meta = json.loads(model_file.read_text())["meta"]
    # the service the runs were stored under (a process keeps the first instrument()'s service name)
    service = team_collector.wait_run(reviewed[0].run_id)[0].service
    assert meta["trained_on"] == {f"{team_collector.endpoint} reviewed/{service}": RUNS}

    workdir = tmp_path / "refitted-collector"
    workdir.mkdir()
    with fresh_collector(workdir, "-o", f"model_path={model_file}") as refitted:
        [run_id] = send_runs(refitted, range(RUNS, RUNS + 1))
        traj, [verdict] = refitted.wait_run(run_id, verdict=True)
    expected = CpuAttributor(model_path=model_file).attribute(traj)
    assert (verdict.agent, verdict.step, verdict.confidence) == (expected.agent, expected.step, expected.confidence)
    assert (verdict.agent, verdict.step) == ("Writer", DECISIVE_STEP)


def test_a_collector_without_reviews_or_with_too_few_is_refused_with_how_many_are_needed(tmp_path):
    with fresh_collector(tmp_path) as c:
        result = train("--collector", c.endpoint, "--out", str(tmp_path / "m.json"))
        assert result.exit_code == 1 and "has no reviewed runs" in result.output
        [run_id] = send_runs(c, range(1))
        c.wait_run(run_id, verdict=True)
        assert httpx.post(f"{c.endpoint}/api/v1/runs/{run_id}/review", json={}, timeout=10).status_code == 200
        result = train("--collector", c.endpoint, "--out", str(tmp_path / "m.json"))
    assert result.exit_code == 1 and "1 usable labelled run(s)" in result.output
    assert f"a refit needs at least {MIN_RUNS}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.json").exists()


def test_an_unreachable_collector_and_misplaced_options_are_refused(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    result = train("--collector", url, "--out", str(tmp_path / "m.json"))
    assert result.exit_code == 1 and f"no collector at {url}" in result.output
    result = train("--collector", url)
    assert result.exit_code == 2 and "--out is required" in result.output
    result = CliRunner().invoke(cli, ["train", str(tmp_path), "--collector", url, "--model", "m", "--output-dir", "d"])
    assert result.exit_code == 2 and "not an option of --attributor tracer: --collector" in result.output
    result = train(str(tmp_path), "--model", "m", "--out", str(tmp_path / "m.json"))
    assert result.exit_code == 2 and "not an option of --attributor cpu: --model" in result.output


@pytest.mark.parametrize("content, message", [
    ('{"weights": [1', "cannot read the cpu model"),
    ('[1, 2]', "is not a usable cpu model: a cpu model is a JSON object"),
    (json.dumps({"features": ["a"], "weights": [1], "mean": [0], "scale": [1]}), "built for other features"),
    (json.dumps({"features": list(FEATURES), "weights": [1.0], "mean": [0.0] * len(FEATURES),
                 "scale": [1.0] * len(FEATURES)}), f"weights must be {len(FEATURES)} numbers"),
    (json.dumps({"features": list(FEATURES), "mean": [0.0] * len(FEATURES)}), "has no 'weights'"),
])
def test_a_collector_given_a_bad_model_file_refuses_to_start_and_says_why(tmp_path, content, message):
    model_file = tmp_path / "m.json"
    model_file.write_text(content)
    refused = subprocess.run([sys.executable, "-m", "agenttrace_collector", "--db", str(tmp_path / "db.sqlite"),
                              "--port", str(free_port()), "--grpc-port", "0", "--attributor", "cpu",
                              "-o", f"model_path={model_file}"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr
