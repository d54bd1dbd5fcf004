"""Prompt building, truncation policy and answer parsing for the tracer-style attributors."""

from __future__ import annotations

import pytest

from agenttrace.attribution.parse import (
    ParseError,
    match_agent,
    parse_all_at_once,
    parse_half,
    parse_tracer_output,
    parse_yes_no,
)
from agenttrace.attribution.prompt import (
    INSTRUCTIONS,
    MARKER,
    allocate,
    build_prompt,
    estimate_tokens,
    shrink,
    step_header,
)
from agenttrace.models import Outcome, Step, ToolCall, Trajectory


def _traj(contents: list[str], *, expected: str | None = "42", task: str = "Compute the answer.") -> Trajectory:
    agents = ["Planner", "Coder", "Executor"]
    return Trajectory(
        run_id="r1", task=task, expected=expected, outcome=Outcome.FAILURE,
        steps=[Step(index=i, agent=agents[i % 3], role="assistant", content=c) for i, c in enumerate(contents)],
    )


# ---------------------------------------------------------------- layout

def test_layout_with_and_without_ground_truth():
    t = _traj(["plan it", "print(41)", "exitcode: 0\n41"])
    with_g = build_prompt(t, with_ground_truth=True)
    without_g = build_prompt(t, with_ground_truth=False)
    assert with_g.system == INSTRUCTIONS == without_g.system
    assert "<answer>" in with_g.system and "decisive error" in with_g.system
    assert "Ground truth (expected answer):\n42" in with_g.user
    assert "Ground truth" not in without_g.user and "42" not in without_g.user
    for p in (with_g, without_g):
        assert p.user.startswith("Task:\nCompute the answer.")
        assert "Step 0 - Planner (assistant):\nplan it" in p.user
        assert "Step 1 - Coder (assistant):\nprint(41)" in p.user
        assert p.user.index("Step 0 -") < p.user.index("Step 1 -") < p.user.index("Step 2 -")
        assert not p.truncated and p.omitted_chars == 0 and not p.over_budget
    assert with_g.messages()[0] == {"role": "system", "content": INSTRUCTIONS}
    assert with_g.text.startswith(INSTRUCTIONS)


def test_ground_truth_absent_is_omitted_even_with_g():
    p = build_prompt(_traj(["a"], expected=None), with_ground_truth=True)
    assert "Ground truth" not in p.user


def test_tool_calls_are_rendered():
    t = Trajectory(run_id="r", task="t", steps=[
        Step(index=0, agent="Coder", content="run it", tool_calls=[ToolCall(name="python", arguments={"code": "1/0"},
                                                                            error="ZeroDivisionError")])])
    p = build_prompt(t)
    assert "[tool call] python(" in p.user and "ZeroDivisionError" in p.user


# ---------------------------------------------------------------- truncation

def _big_run() -> Trajectory:
    contents = [
        "short plan",
        "x" * 50_000 + "\nTraceback (most recent call last):\nValueError: bad input\n" + "y" * 50_000 + "\nexitcode: 1",
        "ok",
        "lorem ipsum " * 20_000 + "\nFINAL ANSWER: 17",
        "done",
    ]
    return _traj(contents)


@pytest.mark.parametrize("budget", [2_000, 5_000, 20_000])
def test_budget_respected_and_every_header_kept(budget):
    t = _big_run()
    p = build_prompt(t, max_tokens=budget)
    assert p.tokens <= budget
    assert estimate_tokens(p.system) + estimate_tokens(p.user) == p.tokens
    assert not p.over_budget
    assert p.system == INSTRUCTIONS
    assert "Task:\nCompute the answer." in p.user and "Ground truth (expected answer):\n42" in p.user
    for s in t.steps:
        assert step_header(s) in p.user
    assert set(p.truncated_steps) == {1, 3}
    assert p.omitted_chars > 0


def test_short_steps_stay_whole_long_ones_cut_proportionally():
    t = _big_run()
    p = build_prompt(t, max_tokens=10_000)
    texts = p.step_texts
    assert texts[0] == "short plan" and texts[2] == "ok" and texts[4] == "done"
    # step 3 (240k chars) keeps more than step 1 (100k chars): proportional, not equal
    assert len(texts[3]) > len(texts[1]) * 1.5
    # head and tail kept, marker with a count
    assert texts[1].startswith("x" * 100) and texts[1].endswith("exitcode: 1")
    assert "chars omitted ...]" in texts[1]
    assert texts[3].endswith("FINAL ANSWER: 17")


def test_telling_lines_from_the_middle_are_kept():
    body = "\n".join(["filler line without signal"] * 2000 + ["ValueError: the real cause"] + ["more filler text"] * 2000)
    cut = shrink(body, 3000)
    assert len(cut) <= 3100
    assert "ValueError: the real cause" in cut
    assert cut.startswith("filler line") and cut.endswith("more filler text")
    # omitted counts are exact: kept chars + omitted chars == original length (markers joined by newlines)
    import re
    omitted = sum(int(n) for n in re.findall(r"\[\.\.\. (\d+) chars omitted \.\.\.\]", cut))
    kept = re.sub(r"\n?\[\.\.\. \d+ chars omitted \.\.\.\]\n?", "", cut)
    assert abs(len(kept) + omitted - len(body)) <= 2 * cut.count("chars omitted")


def test_shrink_without_telling_lines_keeps_head_and_tail():
    body = "a" * 5000 + "b" * 5000
    cut = shrink(body, 1000)
    assert cut.startswith("a" * 300) and cut.endswith("b" * 300)
    assert cut.count("chars omitted") == 1


def test_allocate_water_filling_then_proportional():
    shares = allocate([10, 20, 1000, 3000], 1030)
    assert shares[0] == 10 and shares[1] == 20
    assert shares[2] + shares[3] <= 1000 and shares[3] == pytest.approx(3 * shares[2], abs=2)
    assert allocate([5, 5], 100) == [5, 5]


def test_over_budget_keeps_every_header_and_says_so():
    t = _traj(["x" * 1000] * 300)
    p = build_prompt(t, max_tokens=500)
    assert p.over_budget and p.tokens > 500
    for s in t.steps:
        assert step_header(s) in p.user
    assert MARKER.format(n=1000) in p.user


def test_tokenizer_counting_is_used():
    class CharTok:  # one token per character
        def encode(self, text, add_special_tokens=False):
            return list(text)
    t = _big_run()
    p = build_prompt(t, max_tokens=30_000, tokenizer=CharTok())
    assert p.tokens == len(p.system) + len(p.user) <= 30_000
    for s in t.steps:
        assert step_header(s) in p.user


def test_no_budget_means_no_truncation():
    t = _big_run()
    p = build_prompt(t)
    assert not p.truncated and all(s.content in p.user for s in t.steps)


# ---------------------------------------------------------------- parsing

AGENTS = ["Planner", "Coder", "WebSurfer"]


@pytest.mark.parametrize("text,agent,step", [
    ("<think>because</think><answer>Coder | 2</answer>", "Coder", 2),
    ("<THINK>hmm\n</Think>\n<Answer>  coder |  2 </ANSWER>", "Coder", 2),
    ("<think>never closed... <answer>Coder | Step 3</answer>", "Coder", 3),
    ("<answer>agent: WebSurfer, step: 4</answer>", "WebSurfer", 4),
    ("<answer>Agent: web_surfer | Step: 4</answer>", "WebSurfer", 4),
    ("<answer>3 | Planner</answer>", "Planner", 3),
    ("<answer>Coder at step 7</answer>", "Coder", 7),
    ("<answer>Planner | 1</answer> wait... <answer>Coder | 5</answer>", "Coder", 5),
    ("<answer>Coder | 5", "Coder", 5),
    ("<answer>Codr | 5</answer>", "Coder", 5),
])
def test_tracer_output_variants(text, agent, step):
    r = parse_tracer_output(text, AGENTS)
    assert r.parsed, r.error
    assert (r.agent, r.step) == (agent, step)


def test_reason_is_the_think_text():
    assert parse_tracer_output("<think>the coder divided by zero</think><answer>Coder|1</answer>").reason == \
        "the coder divided by zero"


@pytest.mark.parametrize("text,why", [
    ("", "no <answer>"),
    ("I think it was the Coder at step 2", "no <answer>"),
    ("<answer></answer>", "empty"),
    ("<answer>Coder</answer>", "not 'agent | step'"),
    ("<answer>Coder | two</answer>", "cannot tell"),
    ("<answer>Bob | 2</answer>", "not one of the run's agents"),
    ("<think>maybe <answer>Coder | 1</answer></think>", "inside <think>"),
    ("<answer>Coder | 1 | 2</answer>", "3 fields"),
])
def test_malformed_answers_fail_explicitly(text, why):
    r = parse_tracer_output(text, AGENTS)
    assert not r.parsed and r.agent is None and r.step is None
    assert why in r.error
    with pytest.raises(ParseError):
        r.require()


def test_step_must_belong_to_the_run():
    r = parse_tracer_output("<answer>Coder | 9</answer>", AGENTS, steps={0, 1, 2})
    assert not r.parsed and "not a step" in r.error
    assert parse_tracer_output("<answer>Coder | 2</answer>", AGENTS, steps={0, 1, 2}).parsed


def test_match_agent():
    assert match_agent("CODER", AGENTS) == "Coder"
    assert match_agent("web surfer", AGENTS) == "WebSurfer"
    assert match_agent("Nobody", AGENTS) is None
    assert match_agent("Agent1", ["Agent1", "Agent2"]) == "Agent1"
    assert match_agent("Agent", ["Agent1", "Agent2"]) is None  # ambiguous: no guess


def test_all_at_once_format():
    r = parse_all_at_once("Agent Name: Coder\nStep Number: 3\nReason for Mistake: wrong formula", AGENTS)
    assert (r.parsed, r.agent, r.step, r.reason) == (True, "Coder", 3, "wrong formula")
    r = parse_all_at_once("1. **Agent Name:** websurfer\n2. **Step Number:** (12)\n3. **Reason for Mistake:** x", AGENTS)
    assert (r.agent, r.step) == ("WebSurfer", 12)
    assert not parse_all_at_once("Agent Name: Coder\nReason for Mistake: ?", AGENTS).parsed
    assert not parse_all_at_once("Agent Name: Coder\nStep Number: unknown", AGENTS).parsed
    assert not parse_all_at_once("Agent Name: Nobody\nStep Number: 1", AGENTS).parsed


def test_yes_no_and_halves():
    assert parse_yes_no("1. Yes. 2. Reason: wrong") is True
    assert parse_yes_no("No, this step is fine.") is False
    assert parse_yes_no("Perhaps.") is None
    assert parse_half("The error is in the upper half.") == "upper"
    assert parse_half("Lower half") == "lower"
    assert parse_half("either the upper half or the lower half") is None
