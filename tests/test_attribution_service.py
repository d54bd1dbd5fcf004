"""Attribution as a service: a durable job queue between assembly and attributors, workers that batch, a cascade.

Real collector processes on loopback; the ``openai`` attributor talks to a scripted OpenAI-compatible server
that answers slowly, as an LLM would. Failed runs are the two-agent run of agenttrace.testing.otlp_fuzz
(Planner hands off, Coder answers 41 where 42 is expected; its last turn is step 2).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from click.testing import CliRunner

from agenttrace.attribution import get_attributor
from agenttrace.cli import main
from agenttrace.local_collector import LocalCollector, free_port
from agenttrace.models import Outcome, Step, Trajectory
from agenttrace.testing.otlp_fuzz import seed_request
from agenttrace.testing.scripted_llm import ScriptedLLM
from tests.conftest import query

VERDICT = "<think>the Coder answered 41</think><answer>Coder | 2</answer>"


def send(c: LocalCollector, run_id: str, *, failed: bool = True) -> None:
    body = seed_request(random.Random(run_id), run_id=run_id, failed=failed).SerializeToString()
    resp = httpx.post(f"{c.endpoint}/v1/traces", content=body, headers={"content-type": "application/x-protobuf"},
                      timeout=30)
    assert resp.status_code == 200, resp.text


def detail(c: LocalCollector, run_id: str) -> dict | None:
    resp = httpx.get(f"{c.endpoint}/api/v1/runs/{run_id}", timeout=5)
    return resp.json() if resp.status_code == 200 else None


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout} s")


def openai_collector(tmp_path, llm: ScriptedLLM, *args: str, db=None) -> LocalCollector:
    return LocalCollector(db or tmp_path / "service.db", attributor="openai", log_file=tmp_path / "collector.log",
                          extra_args=("-o", f"base_url={llm.base_url}", "-o", "model=tracer", "-o", "max_retries=0",
                                      "--settle", "0.1", *args))


def test_assembly_never_waits_for_a_slow_attributor_and_the_api_says_the_verdict_is_pending(tmp_path):
    with ScriptedLLM(lambda body: VERDICT, delay_s=4) as llm, openai_collector(tmp_path, llm) as c:
        send(c, "slow-failure")
        first = wait_for(lambda: detail(c, "slow-failure"), 3, "the failed run assembled")
        assert first["attributions"] == [] and first["job"]["state"] in ("queued", "running")
        shown = CliRunner().invoke(main, ["runs", "--endpoint", c.endpoint, "show", "slow-failure"])
        assert shown.exit_code == 0 and "verdict pending" in shown.output
        sent = time.monotonic()
        send(c, "meanwhile-success", failed=False)
        assert wait_for(lambda: detail(c, "meanwhile-success"), 3, "the next run assembled")
        assert time.monotonic() - sent < 3  # not behind the 4 s attribution
        assert detail(c, "slow-failure")["attributions"] == []  # still attributing

        done = wait_for(lambda: (d := detail(c, "slow-failure"))["attributions"] and d, 15, "the verdict")
        verdict = done["attributions"][0]
        assert (verdict["agent"], verdict["step"], verdict["attributor"]) == ("Coder", 2, "openai")
        assert done["job"]["state"] == "done" and done["job"]["attempts"] == 1
        assert detail(c, "meanwhile-success")["job"] is None  # successful runs get no job


def test_a_burst_of_failures_is_attributed_in_batches(tmp_path):
    with ScriptedLLM(lambda body: VERDICT, delay_s=1) as llm, \
            openai_collector(tmp_path, llm, "--attribution-workers", "1", "--batch-size", "8",
                             "--batch-wait", "0.5") as c:
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: send(c, f"burst-{i}"), range(8)))
        for i in range(8):
            wait_for(lambda: (d := detail(c, f"burst-{i}")) and d["attributions"], 20, f"burst-{i}'s verdict")
        assert llm.peak_in_flight >= 4  # one worker, one attribute_batch call, its requests concurrent
        assert time.monotonic() - started < 6  # eight 1 s answers, not one after another
        metrics = httpx.get(f"{c.endpoint}/metrics", timeout=5).text
        assert 'agenttrace_attribution_jobs{state="done"} 8.0' in metrics
        assert "agenttrace_attribution_latency_seconds_count 8.0" in metrics
        assert 'agenttrace_runs_assembled_total{outcome="failure"} 8.0' in metrics


def test_an_attributor_that_keeps_failing_leaves_the_job_failed_with_its_error(tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}/v1"  # no server: every call raises
    with LocalCollector(tmp_path / "failing.db", attributor="openai", log_file=tmp_path / "collector.log",
                        extra_args=("-o", f"base_url={nowhere}", "-o", "model=tracer", "-o", "max_retries=0",
                                    "--settle", "0.1", "--attribution-attempts", "2")) as c:
        send(c, "unattributable")
        failed = wait_for(lambda: (d := detail(c, "unattributable")) and d["job"]["state"] == "failed" and d,
                          20, "the job failed")
        assert failed["attributions"] == [] and failed["job"]["attempts"] == 2
        assert "AttributorError" in failed["job"]["last_error"] and nowhere in failed["job"]["last_error"]


def test_a_collector_killed_mid_attribution_resumes_the_job_and_gives_exactly_one_verdict(tmp_path):
    db = tmp_path / "crash.db"
    with ScriptedLLM(lambda body: VERDICT, delay_s=30) as stuck:
        c = openai_collector(tmp_path, stuck, db=db).start()
        send(c, "interrupted")
        wait_for(lambda: (d := detail(c, "interrupted")) and d["job"]["state"] == "running", 5, "the job running")
        c.kill()
    with ScriptedLLM(lambda body: VERDICT) as llm, openai_collector(tmp_path, llm, db=db) as again:
        done = wait_for(lambda: (d := detail(again, "interrupted"))["attributions"] and d, 15, "the verdict")
        assert len(done["attributions"]) == 1 and done["job"]["state"] == "done"
        assert done["job"]["attempts"] == 2  # the killed attempt counts


def test_two_worker_processes_on_postgresql_one_killed_give_every_failed_run_one_verdict(pg_url, tmp_path):
    runs = [f"pg-service-{i}" for i in range(12)]
    with ScriptedLLM(lambda body: VERDICT, delay_s=0.5) as llm, \
            LocalCollector(pg_url, attributor="none", log_file=tmp_path / "collector.log",
                           extra_args=("--settle", "0.1", "--attribution-workers", "0")) as c:
        worker_args = [str(Path(sys.executable).with_name("agenttrace")), "worker", "--db", pg_url, "--attributor", "openai",
                       "-o", f"base_url={llm.base_url}", "-o", "model=tracer", "-o", "max_retries=0",
                       "--batch-size", "2", "--attribution-timeout", "4"]
        logs = [open(tmp_path / f"worker-{i}.log", "wb") for i in range(2)]
        workers = [subprocess.Popen(worker_args, stdout=log, stderr=log) for log in logs]
        try:
            for run_id in runs:
                send(c, run_id)
            wait_for(lambda: query(pg_url, "SELECT COUNT(*) FROM attributions WHERE run_id LIKE %s", "pg-service-%")[0][0]
                     >= 3, 30, "the first verdicts")
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            wait_for(lambda: query(pg_url, "SELECT COUNT(*) FROM attribution_jobs WHERE run_id LIKE %s "
                                           "AND state = 'done'", "pg-service-%")[0][0] == len(runs), 60, "every job done")
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(timeout=30)
    verdicts = dict(query(pg_url, "SELECT run_id, COUNT(*) FROM attributions WHERE run_id LIKE %s "
                                  "GROUP BY run_id", "pg-service-%"))
    assert verdicts == {run_id: 1 for run_id in runs}


def _trajectory() -> Trajectory:
    return Trajectory(run_id="cascade", task="What is 6 times 7?", expected="42", answer="41",
                      outcome=Outcome.FAILURE, steps=[
                          Step(index=0, agent="Planner", content="Coder: multiply 6 by 7."),
                          Step(index=1, agent="Coder", content="6 times 7 is 41."),
                          Step(index=2, agent="Coder", content="The answer is 41.")])


def test_a_cascade_sends_only_unsure_runs_to_the_expensive_attributor_and_keeps_both_opinions():
    with ScriptedLLM(lambda body: "<answer>Coder | 1</answer>") as llm:
        options = {"then_options": {"base_url": llm.base_url, "model": "tracer"}}
        sure = get_attributor("cascade", first="cpu", then="openai", threshold=0.0, **options)
        verdict = sure.attribute(_trajectory())
        assert verdict.attributor == "cpu" and verdict.opinions == [] and llm.requests == []

        unsure = get_attributor("cascade", first="cpu", then="openai", threshold=1.01, **options)
        verdict = unsure.attribute(_trajectory())
        assert (verdict.agent, verdict.step, verdict.attributor) == ("Coder", 1, "openai")
        assert [o.attributor for o in verdict.opinions] == ["cpu"]
        assert len(llm.requests) == 1


def test_a_worker_with_a_bad_attributor_setting_says_why_without_a_traceback(tmp_path):
    for args, why in ((["--attributor", "nope"], "unknown attributor 'nope'"),
                      (["-o", f"model_path={tmp_path / 'missing.json'}"], "no cpu model at")):
        result = CliRunner().invoke(main, ["worker", "--db", str(tmp_path / "w.db"), *args])
        assert result.exit_code == 1 and why in result.output and "Traceback" not in result.output
