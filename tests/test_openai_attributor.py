"""The OpenAI-compatible attributor against real loopback HTTP servers (ScriptedLLM and a tiny flaky one)."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agenttrace.attribution import AttributorError, get_attributor
from agenttrace.attribution.openai import OpenAIAttributor
from agenttrace.models import Outcome, Step, Trajectory
from agenttrace.testing.scripted_llm import ScriptedLLM


AGENTS = ["Planner", "Coder", "Executor", "Verifier"]


def _run(n: int = 8, run_id: str = "r1") -> Trajectory:
    return Trajectory(
        run_id=run_id, task="What is 6*7?", expected="42", outcome=Outcome.FAILURE,
        steps=[Step(index=i, agent=AGENTS[i % 4], content=f"content of step {i}") for i in range(n)],
    )


def _att(llm, **kw) -> OpenAIAttributor:
    kw.setdefault("model", "tracer")
    return OpenAIAttributor(base_url=llm.base_url, api_key="sk-test", **kw)


def _user(body) -> str:
    return body["messages"][-1]["content"]


# ---------------------------------------------------------------- methods

def test_agentracer_method():
    with ScriptedLLM(["<think>the coder multiplied wrong</think><answer>Coder | 5</answer>"]) as llm:
        a = _att(llm).attribute(_run())
        assert (a.agent, a.step, a.attributor) == ("Coder", 5, "openai")
        assert a.reason == "the coder multiplied wrong"
        body = llm.requests[0]
        assert body["model"] == "tracer" and body["temperature"] == 0.0
        assert "decisive error" in body["messages"][0]["content"]
        assert "Ground truth (expected answer):\n42" in _user(body)
        assert "Step 7 - Verifier (assistant):" in _user(body)


def test_agentracer_without_ground_truth():
    with ScriptedLLM(["<answer>Coder | 1</answer>"]) as llm:
        _att(llm, with_ground_truth=False).attribute(_run())
        assert "42" not in _user(llm.requests[0])


def test_all_at_once_method():
    reply = "Agent Name: Executor\nStep Number: 6\nReason for Mistake: ran the wrong script"
    with ScriptedLLM([reply]) as llm:
        a = _att(llm, method="all_at_once").attribute(_run())
        assert (a.agent, a.step, a.reason) == ("Executor", 6, "ran the wrong script")
        assert len(llm.requests) == 1
        assert "Agent Name:" in _user(llm.requests[0]) and "The Answer for the problem is: 42" in _user(llm.requests[0])


def test_step_by_step_stops_at_first_yes():
    with ScriptedLLM(["1. No. 2. Reason: fine", "No.", "No", "1. Yes. 2. Reason: wrong formula"]) as llm:
        a = _att(llm, method="step_by_step").attribute(_run())
        assert (a.agent, a.step) == ("Verifier", 3)
        assert len(llm.requests) == 4
        # the k-th call shows the run up to step k only
        assert "Step 3 - Verifier" in _user(llm.requests[3]) and "Step 4 -" not in _user(llm.requests[3])
        assert "Step 1 -" not in _user(llm.requests[0])


def test_step_by_step_all_no_is_undecided():
    with ScriptedLLM(["No"] * 4) as llm:
        a = _att(llm, method="step_by_step").attribute(_run(4))
        assert (a.agent, a.step) == (None, None) and "no step of 4" in a.reason
        assert len(llm.requests) == 4


def test_binary_search_narrows_in_log2_calls():
    # 8 steps: [0-7] -> lower [4-7] -> upper [4-5] -> lower [5]
    with ScriptedLLM(["The lower half.", "upper half", "It is in the lower half"]) as llm:
        a = _att(llm, method="binary_search").attribute(_run(8))
        assert (a.agent, a.step) == ("Coder", 5)
        assert len(llm.requests) == 3
        first, second, third = (_user(b) for b in llm.requests)
        assert "Upper half: Step 0 to Step 3" in first and "Lower half: Step 4 to Step 7" in first
        assert "Step 0 -" not in second and "Step 4 -" in second and "Step 7 -" in second
        assert "Upper half: Step 4 to Step 4" in third and "Lower half: Step 5 to Step 5" in third


def test_single_step_needs_no_call_in_binary_search():
    with ScriptedLLM([]) as llm:
        a = _att(llm, method="binary_search").attribute(_run(1))
        assert (a.agent, a.step) == ("Planner", 0) and llm.requests == []


@pytest.mark.parametrize("method,reply", [
    ("agentracer", "I believe it was the coder."),
    ("agentracer", "<answer>Nobody | 3</answer>"),
    ("all_at_once", "The coder did it at step three."),
    ("step_by_step", "Hard to say."),
    ("binary_search", "Somewhere in the middle."),
])
def test_malformed_output_is_an_explicit_failure(method, reply):
    with ScriptedLLM([reply]) as llm:
        a = _att(llm, method=method).attribute(_run())
        assert (a.agent, a.step) == (None, None)
        assert a.reason.startswith(f"unparseable {method} output")


def test_registry_and_env_defaults(monkeypatch):
    with ScriptedLLM(["<answer>Coder | 1</answer>"]) as llm:
        monkeypatch.setenv("AGENTTRACE_OPENAI_BASE_URL", llm.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        att = get_attributor("openai", model="m")
        assert isinstance(att, OpenAIAttributor) and att.base_url == llm.base_url and att.api_key == "sk-env"
        assert att.attribute(_run()).agent == "Coder"
    with pytest.raises(AttributorError):
        OpenAIAttributor(base_url="http://x/v1", model="m", method="guess")


# ---------------------------------------------------------------- Abduct-Act-Predict

def _a2p(*hypotheses: tuple, reasoning: str = "Step by step, what if each step had been right?") -> str:
    """An A2P answer: reasoning, then the hypotheses (step, agent, prediction, probability) as the JSON object."""
    items = [{"step": step, "agent": agent, "abduction": f"cause at {step}", "action": f"fix {step}",
              "prediction": prediction, "probability": p} for step, agent, prediction, p in hypotheses]
    return f"{reasoning}\n```json\n{json.dumps({'hypotheses': items})}\n```"


def test_a2p_sends_the_whole_run_once_with_the_abduct_act_predict_scaffold():
    with ScriptedLLM([_a2p((5, "Coder", "success", 0.8))]) as llm:
        a = _att(llm, method="a2p").attribute(_run())
    assert len(llm.requests) == 1  # the paper's single pass, not one call per step
    system, user = llm.requests[0]["messages"][0]["content"], _user(llm.requests[0])
    for part in ("Abduct", "minimal correction", "Predict", "earliest step whose correction", '"hypotheses"'):
        assert part in system
    assert "Task:\nWhat is 6*7?" in user and "Ground truth (expected answer):\n42" in user
    assert all(f"Step {i} - {agent} (assistant):\ncontent of step {i}" in user
               for i, agent in enumerate(AGENTS * 2))
    assert (a.agent, a.step, a.attributor) == ("Coder", 5, "openai")
    assert a.reason == "cause: cause at 5; minimal correction: fix 5; predicted: the corrected run succeeds (p=0.80)"
    assert a.advice == "fix 5"  # the minimal correction is what the lesson tells the agent to do instead


def test_a2p_blames_the_earliest_step_whose_correction_saves_the_run():
    # listed out of order; step 6 is the likeliest fix, but fixing step 3 already saves the run
    reply = _a2p((6, "Executor", "success", 0.9), (2, "Executor", "failure", 0.1), (3, "Verifier", "success", 0.6))
    with ScriptedLLM([reply, reply]) as llm:
        a = _att(llm, method="a2p").attribute(_run())
        strict = _att(llm, method="a2p", uncertain_below=0.6).attribute(_run())
    assert (a.agent, a.step) == ("Verifier", 3)
    # P(step k is the earliest fix) = p_k * prod(1 - p_j), j the examined steps before k
    assert a.confidence == pytest.approx(0.6 * 0.9)
    assert [(c.agent, c.step) for c in a.candidates] == [("Verifier", 3), ("Executor", 6), ("Executor", 2)]
    assert [c.probability for c in a.candidates] == pytest.approx([0.54, 0.9 * 0.9 * 0.4, 0.1])
    assert not a.uncertain and strict.uncertain  # 0.54 is below a 0.6 threshold


def test_a2p_reads_tolerantly_and_gives_no_candidates_without_probabilities():
    decoy = json.dumps({"hypotheses": [{"step": 0, "agent": "Planner", "abduction": "a", "action": "b",
                                        "prediction": "success"}]})
    reply = (f"<think>a first draft: {decoy}</think>Final analysis.\n"
             '{"hypotheses": [{"step": "Step 1", "agent": "coder", "abduction": "misread the task", '
             '"action": "multiply 6 by 7", "prediction": "Success - the answer becomes 42"}]}')
    with ScriptedLLM([reply]) as llm:
        a = _att(llm, method="a2p").attribute(_run())
    assert (a.agent, a.step) == ("Coder", 1)  # the answer outside <think>, names matched as elsewhere
    assert (a.confidence, a.candidates, a.uncertain) == (None, [], False)


def test_a2p_undecided_when_no_correction_saves_the_run():
    with ScriptedLLM([_a2p((4, "Planner", "failure", 0.2), (1, "Coder", "failure", 0.3))]) as llm:
        a = _att(llm, method="a2p").attribute(_run())
    assert (a.agent, a.step, a.candidates) == (None, None, [])
    assert a.reason == "a2p: no correction of the steps examined (1, 4) is predicted to make the run succeed"


@pytest.mark.parametrize("reply,why", [
    ("The coder got it wrong at step 5.", 'no JSON object with a "hypotheses" list'),
    ('{"hypotheses": []}', '"hypotheses" is not a non-empty list'),
    ('{"hypotheses": [{"step": 5, "agent": "Coder", "abduction": "x", "prediction": "success"}]}',
     "hypothesis 1 has no 'action'"),
    (_a2p((5, "Coder", "maybe", None)), "hypothesis 1: prediction 'maybe' is neither success nor failure"),
    (_a2p((5, "Coder", "success", 1.5)), "hypothesis 1: probability 1.5 is not between 0 and 1"),
    (_a2p((2, "Executor", "failure", 0.1), (5, "Nobody", "success", 0.9)),
     "hypothesis 2: agent 'Nobody' is not one of the run's agents"),
    (_a2p((5, "Coder", "success", 0.9), (5, "Coder", "failure", 0.1)), "step 5 has two hypotheses"),
    (_a2p((12, "Coder", "success", 0.9)), "hypothesis 1: step 12 is not a step of the run"),
])
def test_a2p_malformed_answer_is_undecided_and_says_why(reply, why):
    with ScriptedLLM([reply]) as llm:
        a = _att(llm, method="a2p").attribute(_run())
    assert (a.agent, a.step) == (None, None)
    assert a.reason.startswith(f"unparseable a2p output: {why}")


def test_a2p_is_chosen_from_the_cli(tmp_path):
    from click.testing import CliRunner

    from agenttrace.cli.eval import attribute_command

    path = tmp_path / "run.json"
    path.write_text(_run().model_dump_json())
    with ScriptedLLM([_a2p((3, "Verifier", "success", 0.7))]) as llm:
        result = CliRunner().invoke(attribute_command, [
            str(path), "--attributor", "openai", "-o", "method=a2p", "-o", f"base_url={llm.base_url}",
            "-o", "model=m", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.output)
    assert (verdict["agent"], verdict["step"], verdict["confidence"]) == ("Verifier", 3, 0.7)
    assert verdict["candidates"] == [{"agent": "Verifier", "step": 3, "probability": 0.7}]
    assert "Abduct" in llm.requests[0]["messages"][0]["content"]


# ---------------------------------------------------------------- accounting

def test_token_and_cost_accounting_sums_usage():
    replies = ["No", "No", "Yes"]
    with ScriptedLLM(replies) as llm:
        att = _att(llm, method="step_by_step", price_per_1m_input=2.0, price_per_1m_output=10.0)
        att.attribute(_run())
    # ScriptedLLM's usage: prompt = len(json(messages)) // 4, completion = len(content) // 4
    prompt = sum(len(json.dumps(b["messages"])) // 4 for b in llm.requests)
    completion = sum(len(r) // 4 for r in replies)
    assert att.stats.requests == 3
    assert att.prompt_tokens == prompt and att.completion_tokens == completion
    assert att.stats.total_tokens == prompt + completion
    assert att.cost_usd == pytest.approx((prompt * 2.0 + completion * 10.0) / 1e6)
    assert att.stats.as_dict()["cost_usd"] == pytest.approx(att.cost_usd)


# ---------------------------------------------------------------- concurrency

def _tracer_by_task(body) -> str:
    """A tracer's answer for the run the prompt is about: run k's decisive step is k % 8."""
    k = int(re.search(r"Which step broke run (\d+)\?", _user(body)).group(1))
    return f"<think>run {k} went wrong at step {k % 8}</think><answer>{AGENTS[k % 4]} | {k % 8}</answer>"


def test_vllm_path_batching_comes_from_concurrent_requests():
    """A tracer checkpoint behind `vllm serve CKPT --served-model-name tracer`: vLLM batches the requests that are
    in flight together, so attribute_batch's concurrency is the batch. Stand-in: the scripted server, 0.3 s a reply."""
    n, limit, delay = 24, 8, 0.3
    runs = [_run(8, run_id=f"r{k}").model_copy(update={"task": f"Which step broke run {k}?"}) for k in range(n)]
    with ScriptedLLM(_tracer_by_task, model="tracer", delay_s=delay) as llm:
        att = _att(llm, model="tracer", max_concurrency=limit, max_tokens=1024)
        t0 = time.perf_counter()
        out = att.attribute_batch(runs)
        elapsed = time.perf_counter() - t0
    assert [(a.run_id, a.agent, a.step) for a in out] == [(f"r{k}", AGENTS[k % 4], k % 8) for k in range(n)]
    assert llm.peak_in_flight == limit  # requests overlapped, never more than the limit
    assert {(b["model"], b["max_tokens"]) for b in llm.requests} == {("tracer", 1024)}
    assert att.stats.requests == n
    assert elapsed < n * delay / 3  # serial would take n * delay = 7.2 s; 3 waves of 8 take about 0.9 s


def test_attribute_works_inside_a_running_event_loop():
    import asyncio

    async def main():
        with ScriptedLLM(["<answer>Coder | 1</answer>", "<answer>Coder | 1</answer>"]) as llm:
            att = _att(llm)
            sync = att.attribute(_run())  # sync API from inside a loop
            native = await att.aattribute(_run())
            return sync, native

    sync, native = asyncio.run(main())
    assert sync.agent == native.agent == "Coder"


# ---------------------------------------------------------------- retries

class _Flaky:
    """A tiny chat-completions server: answers the given statuses first, then succeeds."""

    def __init__(self, failures: list[tuple[int, dict[str, str]]], reply: str) -> None:
        self.failures = list(failures)
        self.reply = reply
        self.times: list[float] = []
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                flaky.times.append(time.monotonic())
                if flaky.failures:
                    status, headers = flaky.failures.pop(0)
                    if status == 0:  # drop the connection without an answer
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    payload = json.dumps({"error": {"message": "try later"}}).encode()
                else:
                    status, headers = 200, {}
                    payload = json.dumps({
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": flaky.reply}}],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 7},
                    }).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_retries_on_500_429_and_dropped_connections_then_succeeds():
    failures = [(500, {}), (429, {"Retry-After": "0.3"}), (0, {}), (503, {})]
    with _Flaky(failures, "<answer>Coder | 1</answer>") as srv:
        att = OpenAIAttributor(base_url=srv.base_url, model="m", max_retries=5, backoff=0.01)
        a = att.attribute(_run())
    assert (a.agent, a.step) == ("Coder", 1)
    assert len(srv.times) == 5
    assert att.stats.retries == 4 and att.stats.requests == 1
    assert (att.prompt_tokens, att.completion_tokens) == (100, 7)
    # Retry-After honoured: the wait after the 429 is >= 0.3 s, the exponential ones are short
    assert srv.times[2] - srv.times[1] >= 0.29
    assert srv.times[1] - srv.times[0] < 0.25


def test_retries_exhausted_raise_or_record():
    with _Flaky([(500, {})] * 3, "<answer>Coder | 1</answer>") as srv:
        att = OpenAIAttributor(base_url=srv.base_url, model="m", max_retries=2, backoff=0.01)
        with pytest.raises(AttributorError, match="failed after 3 attempts"):
            att.attribute(_run())
        assert att.stats.failed_requests == 1
    with _Flaky([(503, {})] * 2, "<answer>Coder | 1</answer>") as srv:
        att = OpenAIAttributor(base_url=srv.base_url, model="m", max_retries=1, backoff=0.01, on_error="record")
        a = att.attribute(_run())
        assert (a.agent, a.step) == (None, None) and a.reason.startswith("openai request failed")


def test_client_errors_are_not_retried():
    with _Flaky([(400, {})], "unused") as srv:
        att = OpenAIAttributor(base_url=srv.base_url, model="m", max_retries=3, backoff=0.01)
        with pytest.raises(AttributorError, match="HTTP 400"):
            att.attribute(_run())
        assert len(srv.times) == 1


def test_connection_refused_is_retried_then_fails():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    att = OpenAIAttributor(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=2, backoff=0.01)
    with pytest.raises(AttributorError, match="ConnectError"):
        att.attribute(_run())
    assert att.stats.retries == 2
