"""The API behind the UI's run, failure-mode and review views, on a collector with tokens: a run's spans,
failure modes, reviews (confirm or correct a verdict), reviewed runs as labelled data for `agenttrace eval`
and `agenttrace export`, and a correction replacing the wrong verdict's lesson. A service token sees and
reviews only its own service's runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest
from click.testing import CliRunner

from agenttrace.cli import main as cli
from agenttrace.data.datasets import load_tracertraj
from tests.test_auth import ADMIN, ALPHA, BETA, CALLERS, READER, ROOT, bearer, collector, runs, token_file  # noqa: F401


def api(collector, method: str, path: str, token: str | None = ADMIN, **kwargs) -> httpx.Response:  # noqa: F811
    return httpx.request(method, f"{collector.endpoint}/api/v1{path}", headers=bearer(token), timeout=10, **kwargs)


NEW_ROUTES = {
    # name: (method, path with {alpha} for alpha's run id, JSON body, status per caller in CALLERS' order)
    "run spans": ("GET", "/runs/{alpha}/spans", None, (401, 401, 404, 200, 200)),
    "failure modes": ("GET", "/failures", None, (401, 401, 200, 200, 200)),
    "reviewed runs": ("GET", "/reviewed", None, (401, 401, 200, 200, 200)),
    "review (confirm)": ("POST", "/runs/{alpha}/review", {}, (401, 401, 404, 200, 200)),
}


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("route", list(NEW_ROUTES))
def test_new_endpoint_answers_each_caller_as_its_scope_allows(collector, runs, route, caller):  # noqa: F811
    method, path, body, statuses = NEW_ROUTES[route]
    expected = dict(zip(CALLERS, statuses))[caller]
    resp = api(collector, method, path.format(alpha=runs["alpha"]), CALLERS[caller], json=body)
    assert resp.status_code == expected, resp.text


def test_a_read_only_token_reads_spans_but_cannot_review(collector, runs):  # noqa: F811
    assert api(collector, "GET", f"/runs/{runs['alpha']}/spans", READER).status_code == 200
    resp = api(collector, "POST", f"/runs/{runs['alpha']}/review", READER, json={})
    assert resp.status_code == 403 and "read-only" in resp.json()["detail"]


def test_a_run_s_spans_are_decoded_with_tree_links_kinds_and_times(collector, runs):  # noqa: F811
    spans = api(collector, "GET", f"/runs/{runs['alpha']}/spans").json()
    by_kind = {s["kind"]: s for s in spans}
    assert set(by_kind) == {"run", "agent"}
    assert by_kind["run"]["parent_id"] is None and by_kind["agent"]["parent_id"] == by_kind["run"]["span_id"]
    assert by_kind["agent"]["agent"] == "Adder" and by_kind["agent"]["status"] == "ok"
    assert all(s["start"] <= s["end"] for s in spans)
    assert by_kind["run"]["attributes"]["agenttrace.run.answer"] == "5"


def test_a_service_token_sees_only_its_services_failure_modes_and_reviews(collector, runs):  # noqa: F811
    for service, token in (("alpha", ALPHA), ("beta", BETA)):
        assert api(collector, "POST", f"/runs/{runs[service]}/review", token, json={"note": service}).status_code == 200
    beta_modes = api(collector, "GET", "/failures", BETA).json()
    assert beta_modes["total"] == 1 and [g["key"] for g in beta_modes["by_agent"]] == ["Adder"]
    assert api(collector, "GET", "/failures", ADMIN).json()["total"] >= 2
    assert [r["id"] for r in api(collector, "GET", "/reviewed", BETA).json()] == [runs["beta"]]
    assert {runs["alpha"], runs["beta"]} <= {r["id"] for r in api(collector, "GET", "/reviewed", ADMIN).json()}
    assert api(collector, "POST", f"/runs/{runs['alpha']}/review", BETA, json={"step": 0}).status_code == 404


@pytest.mark.parametrize("body, status, message", [
    ({"step": 7}, 400, "has steps 0 to 0, not 7"),
    ({"step": 0, "agent": "Nobody"}, 400, "step 0 is 'Adder''s, not 'Nobody''s (or give 'environment' when"),
    ({"agent": "Nobody"}, 400, "the verdict blames 'Adder', not 'Nobody'"),
    ({"step": -1}, 422, "greater than or equal to 0"),
    ({"note": "x" * 5000}, 422, "at most 4000 characters"),
])
def test_a_review_that_does_not_fit_the_run_is_refused_with_why(collector, runs, body, status, message):  # noqa: F811
    resp = api(collector, "POST", f"/runs/{runs['alpha']}/review", json=body)
    assert resp.status_code == status and message in resp.text


# An app of service alpha, in its own process (a process has one service name), sending with alpha's token a
# failed run: the Planner passes a wrong number, the Coder uses it.
TWO_STEP_APP = """
import sys
import uuid
import agenttrace
agenttrace.instrument(endpoint=sys.argv[1], service_name="alpha", frameworks=[])
with agenttrace.run("review-me", task="Add 2 and 2.", expected="4") as run:
    with agenttrace.agent_step("Planner", input="Add 2 and 2.") as step:
        step.output("Coder: add 2 and 3.")
        step.transfer("Coder")
    with agenttrace.agent_step("Coder") as step:
        step.output("2 + 3 = 5")
    run.finish("5")
agenttrace.flush()
print(run.run_id)
"""


@pytest.fixture(scope="module")
def two_step_run(collector):  # noqa: F811
    app = subprocess.run([sys.executable, "-c", TWO_STEP_APP, collector.endpoint], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=os.environ | {"AGENTTRACE_TOKEN": ALPHA})
    assert app.returncode == 0, app.stderr
    traj, verdicts = collector.wait_run(app.stdout.split()[-1], verdict=True)
    return traj, verdicts[-1]


def test_reviews_label_runs_for_eval_and_export_and_a_correction_replaces_the_lesson(  # noqa: F811
        collector, runs, two_step_run, tmp_path, monkeypatch):
    traj, verdict = two_step_run
    monkeypatch.setenv("AGENTTRACE_TOKEN", ADMIN)
    predictions = iter(tmp_path / f"predictions-{i}.json" for i in range(10))

    def eval_step_accuracy() -> float:
        result = CliRunner().invoke(cli, ["eval", "--collector", collector.endpoint, "--attributor", "cpu",
                                          "--out", str(next(predictions)), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["scores"]["with_G"]["all"]["step_acc_exact"]

    confirmed = api(collector, "POST", f"/runs/{traj.run_id}/review", json={}).json()
    assert confirmed["confirmed"] is True and (confirmed["agent"], confirmed["step"]) == (verdict.agent, verdict.step)
    reviewed = api(collector, "GET", "/reviewed").json()
    assert all(r["tags"]["review"] == "confirmed" for r in reviewed)
    assert eval_step_accuracy() == 1.0  # every label is a verdict cpu made, and cpu makes it again

    other = 1 - verdict.step  # the step the verdict did not blame
    corrected = api(collector, "POST", f"/runs/{traj.run_id}/review",
                    json={"step": other, "note": "the <b>Planner</b> passed 3 [/INST]"}).json()
    assert corrected["confirmed"] is False and corrected["step"] == other
    assert corrected["agent"] == traj.steps[other].agent
    assert eval_step_accuracy() == pytest.approx((len(reviewed) - 1) / len(reviewed))

    lessons = [lesson for lesson in api(collector, "GET", "/lessons").json() if lesson["run_id"] == traj.run_id]
    assert [(lesson["agent"], lesson["step"]) for lesson in lessons] == [(traj.steps[other].agent, other)]
    assert "the <b>Planner</b> passed 3 [/INST]" in lessons[0]["text"]

    result = CliRunner().invoke(cli, ["export", str(tmp_path / "ww"), "--endpoint", collector.endpoint])
    assert result.exit_code == 0, result.output
    exported = json.loads((tmp_path / "ww" / f"{traj.run_id}.json").read_text())
    assert (exported["mistake_agent"], exported["mistake_step"]) == (traj.steps[other].agent, str(other))
    assert exported["mistake_reason"] == "the <b>Planner</b> passed 3 [/INST]"
    assert [h["name"] for h in exported["history"]] == ["Planner", "Coder"]
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "tt.jsonl"), "--format", "tracertraj",
                                      "--endpoint", collector.endpoint])
    assert result.exit_code == 0, result.output
    items = load_tracertraj(tmp_path / "tt.jsonl")
    assert len(items) == len(reviewed)
    assert next(i.label for i in items if i.id == f"tt/{traj.run_id}").step == other

    # a service was down: corrected to the environment, which teaches no agent, so the run's lesson goes
    env = api(collector, "POST", f"/runs/{traj.run_id}/review", json={"step": 0, "agent": "environment"}).json()
    assert (env["agent"], env["step"], env["confirmed"]) == ("environment", 0, False)
    assert [(r["label"]["agent"], r["label"]["step"]) for r in api(collector, "GET", "/reviewed").json()
            if r["id"] == traj.run_id] == [("environment", 0)]
    assert [lesson for lesson in api(collector, "GET", "/lessons").json() if lesson["run_id"] == traj.run_id] == []


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from agenttrace_collector.store import open_store

    db = str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(db)
    yield s
    s.close()


def test_both_stores_filter_runs_keep_usage_and_reviews(store):
    """The queries behind the runs list, failure modes and reviews, on SQLite and on PostgreSQL."""
    from agenttrace.models import Attribution, Lesson, Outcome, Step, Trajectory
    from agenttrace_collector.store import RunFilter
    from agenttrace_collector.usage import Usage

    service = f"store-{uuid.uuid4().hex[:8]}"  # the PostgreSQL cluster is shared by the session's tests
    runs = []
    for i, (answer, agent) in enumerate([("4", "Solver_A"), ("5", "Planner"), ("50%_off", "Coder")]):
        t = Trajectory(run_id=f"{service}-{i}", name=f"job {i}", service=service, task=f"Task {i}: add", answer=answer,
                       outcome=Outcome.SUCCESS if i == 0 else Outcome.FAILURE, start_time=1000.0 + i,
                       end_time=1002.0 + i, steps=[Step(index=0, agent=agent, content="x")])
        store.save_run(t, bytes.fromhex(uuid.uuid4().hex), enqueue=i > 0, usage=Usage(100 * i, 10 * i, 0.5 * i or None))
        runs.append(t)
    store.save_attribution(Attribution(run_id=runs[1].run_id, agent="Planner", step=0, attributor="cpu",
                                       confidence=0.7, created_at=2000.0), service)

    def ids(**kw) -> list[str]:
        return [r["run_id"] for r in store.list_runs(RunFilter(only_service=service, **kw))]

    assert ids() == [runs[2].run_id, runs[1].run_id, runs[0].run_id]
    assert ids(search="50%") == [runs[2].run_id]  # LIKE wildcards are literal
    assert ids(search="solver_a") == [runs[0].run_id]  # an agent, any case
    assert ids(search="TASK 1") == [runs[1].run_id]
    assert ids(agent="Planner") == [runs[1].run_id] and ids(outcome="success") == [runs[0].run_id]
    assert ids(since=1001.0, until=1002.0) == [runs[1].run_id]
    assert store.count_runs(RunFilter(only_service=service, outcome="failure")) == 2
    [listed] = store.list_runs(RunFilter(only_service=service, search="TASK 1"))
    assert (listed["input_tokens"], listed["output_tokens"], listed["cost"]) == (100, 10, 0.5)
    assert (listed["agent"], listed["confidence"], listed["job_state"], listed["reviewed"]) == ("Planner", 0.7,
                                                                                               "queued", None)

    review = {"run_id": runs[1].run_id, "service": service, "verdict_seq": 1, "agent": "Planner", "step": 0,
              "confirmed": False, "note": "n", "reviewer": "ops", "created_at": 2001.0}
    store.add_lesson(Lesson(agent="Planner", text="old", run_id=runs[1].run_id, step=0))
    store.save_review(review, Lesson(agent="Planner", text="new", run_id=runs[1].run_id, step=0))
    store.save_review(review | {"confirmed": True, "note": "again"})  # a second review replaces the first
    assert store.reviews(only_service=service) == [review | {"confirmed": True, "note": "again"}]
    assert [lesson.text for lesson in store.lessons("Planner", only_service=service)] == ["new"]
    assert ids(agent="Planner") == [runs[1].run_id]
    assert store.list_runs(RunFilter(only_service=service, agent="Planner"))[0]["reviewed"] == "confirmed"
    assert store.failure_verdicts(1999.0, 2001.0, only_service=service) == [("Planner", "completed", 2000.0)]
