"""Specification of agenttrace.data.datasets: reading Who&When / TracerTraj and writing the Who&When shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import whowhen_fixtures as fx  # noqa: E402

from agenttrace.data.datasets import (  # noqa: E402
    ALGORITHM_GENERATED,
    HAND_CRAFTED,
    DatasetError,
    from_whowhen,
    load_any,
    load_tracertraj,
    load_whowhen_dir,
    load_whowhen_file,
    to_whowhen,
)
from agenttrace.models import Label, Step, ToolCall, Trajectory  # noqa: E402


def test_hand_crafted_agents_come_from_role_without_the_suffix(tmp_path):
    path = tmp_path / "7.json"
    path.write_text(json.dumps(fx.hand_crafted()))
    item = load_whowhen_file(path)
    steps = item.trajectory.steps
    assert item.subset == HAND_CRAFTED
    assert item.id == "Hand-Crafted/7"
    assert steps[0].agent == "human"
    assert steps[1].agent == "Orchestrator" and steps[1].role == "Orchestrator (thought)"
    assert steps[2].agent == "Orchestrator" and steps[2].role == "Orchestrator (-> WebSurfer)"
    assert [s.index for s in steps] == list(range(len(steps)))
    assert item.label == Label(agent="WebSurfer", step=5, reason=fx.hand_crafted()["mistake_reason"])
    assert item.trajectory.steps[item.label.step].agent == "WebSurfer"
    assert item.trajectory.task.startswith("How many employees")
    assert item.trajectory.expected == "1200"


def test_algorithm_generated_agents_come_from_name(tmp_path):
    path = tmp_path / "3.json"
    path.write_text(json.dumps(fx.algorithm_generated()))
    item = load_whowhen_file(path)
    assert item.subset == ALGORITHM_GENERATED
    assert [s.agent for s in item.trajectory.steps][:3] == ["Planning_Expert", "DataAnalysis_Expert", "Computer_terminal"]
    assert item.trajectory.steps[0].role == "assistant"
    assert item.label.step == 1


def test_tracertraj_jsonl_one_item_per_line(tmp_path):
    path = tmp_path / "code-dev.jsonl"
    path.write_text("\n".join(json.dumps(fx.tracertraj_row(i)) for i in range(3)) + "\n\n")
    items = load_tracertraj(path)
    assert [it.id for it in items] == ["code-dev/tt-0", "code-dev/tt-1", "code-dev/tt-2"]
    assert {it.subset for it in items} == {"code-dev"}
    assert items[1].label.agent == "DataAnalysis_Expert"


def test_load_any_reads_folders_files_and_jsonl(tmp_path):
    hc, ag, jsonl = fx.write_dataset(tmp_path, n_hand=2, n_algo=3, n_tracer=4)
    assert len(load_any(hc)) == 2
    assert len(load_whowhen_dir(ag)) == 3
    assert len(load_any(jsonl)) == 4
    assert len(load_any(ag / "2.json")) == 1
    whole = load_any(tmp_path)  # a folder of folders
    assert sorted({it.subset for it in whole}) == ["Algorithm-Generated", "Hand-Crafted", "code-dev"]
    assert len(whole) == 9


def test_load_any_reads_a_trajectory_dump(tmp_path):
    traj = Trajectory(run_id="r1", task="t", steps=[Step(index=0, agent="a", content="hi")])
    path = tmp_path / "run.json"
    path.write_text(traj.model_dump_json())
    [item] = load_any(path)
    assert item.trajectory == traj and item.label is None


def test_round_trip_through_the_whowhen_shape():
    original = from_whowhen(fx.hand_crafted(3))
    data = to_whowhen(original.trajectory, original.label)
    assert set(data["history"][0]) == {"content", "name", "role", "step"}
    assert data["mistake_step"] == "5" and data["mistake_agent"] == "WebSurfer"
    back = from_whowhen(json.loads(json.dumps(data)), subset=original.subset)
    assert back.label == original.label
    assert back.trajectory.task == original.trajectory.task
    assert back.trajectory.expected == original.trajectory.expected
    assert [(s.agent, s.role, s.content) for s in back.trajectory.steps] == [
        (s.agent, s.role, s.content) for s in original.trajectory.steps
    ]


def test_to_whowhen_renders_tool_calls_into_content_and_omits_a_missing_label():
    traj = Trajectory(run_id="r", task="q", steps=[
        Step(index=0, agent="coder", content="running", tool_calls=[ToolCall(name="python", arguments="1/0",
                                                                          error="ZeroDivisionError")])])
    data = to_whowhen(traj)
    assert "ZeroDivisionError" in data["history"][0]["content"]
    assert "mistake_step" not in data
    assert from_whowhen(data).label is None


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("history"), "history"),
        (lambda d: d.update(history="not a list"), "history"),
        (lambda d: d.update(mistake_step="twelve"), "mistake_step"),
        (lambda d: d.update(mistake_step=None), "mistake_step"),
        (lambda d: d.update(mistake_agent=3), "mistake_agent"),
        (lambda d: d["history"][2].update(content=[{"type": "text"}]), "history[2].content[0].text"),
        (lambda d: d["history"][2].update(content=3), "history[2].content"),
        (lambda d: d["history"].__setitem__(1, "oops"), "history[1]"),
    ],
)
def test_bad_input_names_the_file_and_the_field(tmp_path, mutate, field):
    data = fx.algorithm_generated()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as err:
        load_whowhen_file(path)
    assert str(path) in str(err.value)
    assert repr(field) in str(err.value)
    assert err.value.field == field


def test_bad_jsonl_line_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(fx.tracertraj_row()) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"x\.jsonl:2"):
        load_tracertraj(path)


def _structured_run() -> tuple[Trajectory, Label]:
    steps = [
        Step(index=0, agent="customer", role="human", content="What do 2 kettles cost in the EU?"),
        Step(index=1, agent="assistant", content="Let me look that up.", input="You are a shop assistant.",
             tool_calls=[ToolCall(id="c1", name="get_price", arguments={"product": "kettle", "region": "EU"},
                                  result='{"price": 34.5,\n "currency": "EUR"}'),
                         ToolCall(name="python", arguments="print((1, 2)) + x", error="SyntaxError: (x)")]),
        Step(index=2, agent="assistant", content="", transfer_to="billing"),
        Step(index=3, agent="billing", content="2 kettles cost 79 EUR.", error="budget exceeded"),
    ]
    traj = Trajectory(run_id="shop-1", task="price of 2 kettles", expected="69 EUR", answer="79 EUR", steps=steps)
    return traj, Label(agent="billing", step=3, reason="adds 10")


def test_an_export_reads_back_with_its_tool_calls_handoffs_prompts_and_answer():
    traj, label = _structured_run()
    data = json.loads(json.dumps(to_whowhen(traj, label)))
    assert "[tool call] get_price" in data["history"][1]["content"]  # still readable as a Who&When log
    back = from_whowhen(data)
    assert back.label == label
    assert back.trajectory.answer == "79 EUR"
    fields = {"index", "agent", "role", "content", "input", "transfer_to", "error"}
    assert [s.model_dump(include=fields) for s in back.trajectory.steps] == [
        s.model_dump(include=fields) for s in traj.steps]
    price, python = back.trajectory.steps[1].tool_calls
    assert (price.name, price.arguments, price.result) == ("get_price", {"product": "kettle", "region": "EU"},
                                                           '{"price": 34.5,\n "currency": "EUR"}')
    assert (python.name, python.arguments, python.result, python.error) == (
        "python", "print((1, 2)) + x", None, "SyntaxError: (x)")


def test_an_export_keeps_the_declared_team_and_a_bad_team_is_refused():
    from agenttrace.models import Teammate, ToolSpec

    traj, label = _structured_run()
    team = [Teammate(name="scout", tools=[ToolSpec(name="get_price", parameters=["product", "region"])])]
    data = json.loads(json.dumps(to_whowhen(traj.model_copy(update={"team": team}), label)))
    assert from_whowhen(data).trajectory.team == team
    assert "team" not in to_whowhen(traj, label)
    with pytest.raises(DatasetError, match=r"team.*not a JSON list of teammates"):
        from_whowhen(data | {"team": [{"tools": []}]})


def test_openai_chat_messages_fold_each_tool_answer_into_its_call_and_keep_the_message_numbers():
    data = {
        "question": "refund order 7",
        "history": [
            {"role": "user", "content": "Please refund order 7."},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "get_order", "arguments": '{"id": 7}'}},
                {"id": "b", "type": "function", "function": {"name": "get_user", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "b", "content": '{"user": "kim"}'},
            {"role": "tool", "tool_call_id": "a", "content": '{"total": 40}'},
            {"role": "assistant", "content": "Refunded 45 to kim."},
            {"role": "tool", "tool_call_id": "zz", "content": "a result nothing asked for"},
        ],
        "mistake_agent": "assistant", "mistake_step": "4",
    }
    item = from_whowhen(data)
    steps = item.trajectory.steps
    assert item.subset == "chat"
    assert [(s.index, s.agent) for s in steps] == [(0, "user"), (1, "assistant"), (4, "assistant"), (5, "tool")]
    order, user = steps[1].tool_calls
    assert (order.name, order.arguments, order.result) == ("get_order", {"id": 7}, '{"total": 40}')
    assert (user.name, user.arguments, user.result) == ("get_user", {}, '{"user": "kim"}')
    assert item.label.step == 4 and item.trajectory.position(4) == 2
    assert from_whowhen(data | {"mistake_step": "3"}).label.step == 1  # a tool's wrong answer: its caller's step
    # written back, the history is numbered afresh and the label follows its step
    again = to_whowhen(item.trajectory, item.label)
    assert again["mistake_step"] == "2" and again["history"][2]["content"] == "Refunded 45 to kim."


def test_a_tool_message_that_answers_no_call_is_an_input_of_the_run():
    from agenttrace.attribution.flow import is_tool_output

    item = from_whowhen({"history": [{"role": "user", "content": "hi"},
                                     {"role": "function", "name": "lookup", "content": "42"}]})
    step = item.trajectory.steps[1]
    assert (step.agent, step.role, step.content) == ("lookup", "function", "42")
    assert is_tool_output(step)


@pytest.mark.parametrize(
    ("tool_calls", "field"),
    [
        ("get_order", "history[1].tool_calls"),
        ([{"function": {"arguments": "{}"}}], "history[1].tool_calls[0].function"),
        ([{"function": {"name": "f"}, "error": 3}], "history[1].tool_calls[0].error"),
    ],
)
def test_malformed_tool_calls_name_the_field(tool_calls, field):
    data = {"history": [{"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "", "tool_calls": tool_calls}]}
    with pytest.raises(DatasetError) as err:
        from_whowhen(data)
    assert err.value.field == field


def test_a_call_that_names_the_next_turns_agent_is_read_as_a_handoff():
    def call(name, arguments):
        return {"id": name, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}

    steps = from_whowhen({"history": [
        {"role": "assistant", "name": "triage", "content": "", "tool_calls": [call("transfer_to_billing", {})]},
        {"role": "tool", "tool_call_id": "transfer_to_billing", "content": "transferred"},
        {"role": "assistant", "name": "billing", "content": "", "tool_calls": [call("handoff", {"to_agent": "refunds"})]},
        {"role": "assistant", "name": "refunds", "content": "", "tool_calls": [call("get_order", {"id": 7})]},
        {"role": "assistant", "name": "triage", "content": "Done."},
    ]}).trajectory.steps
    assert [(s.agent, s.transfer_to) for s in steps] == [
        ("triage", "billing"), ("billing", "refunds"), ("refunds", None), ("triage", None)]


def test_react_text_is_read_as_calls_each_answered_by_its_observation():
    item = from_whowhen({"question": "double the population of Paris", "mistake_agent": "researcher", "mistake_step": 2,
                         "history": [
        {"role": "user", "content": "What is twice the population of Paris?"},
        {"role": "assistant", "name": "researcher",
         "content": 'Thought: I need the population.\nAction: search\nAction Input: {"query": "Paris population"}'},
        {"role": "user", "name": "researcher", "content": "Observation: 2102650 inhabitants (2023)."},
        {"role": "assistant", "name": "researcher", "content": (
            'Thought: now double it\nAction:\n```json\n{"action": "calculator", "action_input": "2102650*2"}\n```\n'
            "Observation: 4205300\nThought: I know it now\nAction: transfer_to_writer\nAction Input: none\n"
            "Observation: ok")},
        {"role": "assistant", "name": "writer", "content": "Action: none needed.\nFinal Answer: 4205300"},
        {"role": "user", "content": "Observation: a result no call asked for"},
    ]})
    steps = item.trajectory.steps
    assert [(s.index, s.agent) for s in steps] == [(0, "user"), (1, "researcher"), (3, "researcher"), (4, "writer"),
                                                   (5, "user")]
    [search] = steps[1].tool_calls
    assert (steps[1].content, search.name, search.arguments, search.result) == (
        "I need the population.", "search", {"query": "Paris population"}, "2102650 inhabitants (2023).")
    calculator, transfer = steps[2].tool_calls
    assert (calculator.name, calculator.arguments, calculator.result) == ("calculator", "2102650*2", "4205300")
    assert (transfer.name, transfer.arguments, transfer.result) == ("transfer_to_writer", "none", "ok")
    assert steps[2].content == "now double it\nI know it now" and steps[2].transfer_to == "writer"
    # an Action line that names no tool input is the agent's words; an observation answering nothing is a turn
    assert (steps[3].tool_calls, steps[3].content) == ([], "Action: none needed.\nFinal Answer: 4205300")
    assert steps[4].content == "a result no call asked for"
    assert item.label.step == 1  # the observation's step: the call it answers


def _assert_refund_run(item, *, error_flagged: bool):
    """The run every message convention below writes: a lookup that fails, a retry that works, a refund."""
    steps = item.trajectory.steps
    assert [(s.index, s.agent, s.content) for s in steps] == [
        (0, "user", "Refund order 7, please."), (1, "assistant", "Looking it up."), (3, "assistant", ""),
        (5, "assistant", "Refunded 40.")]
    failed, = steps[1].tool_calls
    retry, = steps[2].tool_calls
    assert (failed.name, failed.arguments, retry.arguments, retry.result) == (
        "get_order", {"id": "7x"}, {"id": 7}, '{"total": 40}')
    assert (failed.error, failed.result) == (("Error: no order 7x", None) if error_flagged else
                                             (None, "Error: no order 7x"))
    assert item.label.step == 3 and item.subset == "chat"  # a tool's answer: the step that called it


def _dumpd(cls: str, **kwargs) -> dict:
    """A LangChain message as ``langchain_core.load.dumpd`` writes it (checked against langchain-core 1.8)."""
    return {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", cls], "kwargs": kwargs}


_SMOL_PROMPT = [
    {"role": "system", "content": [{"type": "text", "text": "You are an expert assistant who can solve any task."}]},
    {"role": "user", "content": [{"type": "text", "text": "New task:\nRefund order 7, please."}]}]


def _smol_call(call_id: str, name: str, arguments) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _smol_action(step_number: int, model_output, *, tool_calls=(), model_calls=(), observations=None, error=None):
    """An action step as smolagents' ``ActionStep.dict()`` writes it (keys and shapes checked against smolagents
    1.26's ToolCallingAgent and CodeAgent): ``tool_calls`` the calls it recorded, ``model_calls`` the native tool
    calls in the model's message (a ToolCallingAgent's; a CodeAgent's model writes code instead)."""
    usage = {"input_tokens": 812, "output_tokens": 31, "total_tokens": 843}
    return {
        "step_number": step_number, "timing": {"start_time": 1.0, "end_time": 2.5, "duration": 1.5},
        "model_input_messages": _SMOL_PROMPT, "tool_calls": [_smol_call(*c) for c in tool_calls], "error": error,
        "model_output_message": {"role": "assistant", "content": model_output, "raw": None, "token_usage": usage,
                                 "tool_calls": [{"function": {"arguments": a, "name": n, "description": None}, "id": i,
                                                 "type": "function"} for i, n, a in model_calls]},
        "model_output": model_output, "code_action": None, "observations": observations, "observations_images": None,
        "action_output": None, "token_usage": usage, "is_final_answer": False,
    }


def test_langchain_message_dicts_are_read_with_their_calls_and_failed_tool_status():
    item = from_whowhen({"mistake_agent": "assistant", "mistake_step": 4, "history": [
        {"type": "human", "content": "Refund order 7, please."},
        {"type": "ai", "content": "Looking it up.", "tool_calls": [{"name": "get_order", "args": {"id": "7x"}, "id": "a"}]},
        {"type": "tool", "content": "Error: no order 7x", "tool_call_id": "a", "status": "error"},
        {"type": "ai", "content": "", "tool_calls": [{"name": "get_order", "args": {"id": 7}, "id": "b"}]},
        {"type": "tool", "content": '{"total": 40}', "tool_call_id": "b"},
        {"type": "ai", "content": "Refunded 40."},
    ]})
    _assert_refund_run(item, error_flagged=True)


def test_an_empty_tool_call_list_leaves_the_text_to_be_read_for_calls():
    item = from_whowhen({"history": [
        _dumpd("HumanMessage", content="What is twice 21?", type="human"),
        _dumpd("AIMessage", content="Thought: compute it\nAction: calculator\nAction Input: 21*2\nObservation: 42",
               type="ai", tool_calls=[], invalid_tool_calls=[]),
    ]})
    [call] = item.trajectory.steps[1].tool_calls
    assert (call.name, call.arguments, call.result) == ("calculator", "21*2", "42")


def test_langchain_invalid_tool_calls_are_calls_that_fail_on_their_own_arguments():
    """What langchain-openai makes of a model's call whose arguments are not JSON (checked against 1.x): it goes
    to ``invalid_tool_calls`` with the parser's error, nothing runs it, and the agent goes on."""
    parse_error = "Function get_order arguments:\n\n{\"id\": 7\n\nare not valid JSON."
    item = from_whowhen({"history": [
        _dumpd("HumanMessage", content="Refund order 7, please.", type="human"),
        _dumpd("AIMessage", content="", type="ai", tool_calls=[], invalid_tool_calls=[
            {"type": "invalid_tool_call", "id": "c1", "name": "get_order", "args": '{"id": 7', "error": parse_error}]),
        {"type": "ai", "content": "", "tool_calls": [{"name": "get_order", "args": {"id": 7}, "id": "c2"}],
         "invalid_tool_calls": [{"type": "invalid_tool_call", "id": "c3", "name": None, "args": "{", "error": None}]},
    ]})
    [broken] = item.trajectory.steps[1].tool_calls
    assert (broken.id, broken.name, broken.arguments, broken.error) == ("c1", "get_order", '{"id": 7', parse_error)
    valid, unnamed = item.trajectory.steps[2].tool_calls
    assert (valid.name, valid.arguments, valid.error) == ("get_order", {"id": 7}, None)
    assert (unnamed.name, unnamed.arguments, unnamed.error) == ("(unnamed)", "{", "its arguments could not be parsed")
    with pytest.raises(DatasetError, match=r"invalid_tool_calls\[0\]\.name"):
        from_whowhen({"history": [{"type": "ai", "content": "", "invalid_tool_calls": [{"name": 3, "args": "{"}]}]})


def test_langchain_serialized_messages_are_read_as_their_message_dicts():
    item = from_whowhen({"mistake_agent": "assistant", "mistake_step": 4, "history": [
        _dumpd("HumanMessage", content="Refund order 7, please.", type="human"),
        _dumpd("AIMessage", content="Looking it up.", type="ai", invalid_tool_calls=[],
               tool_calls=[{"name": "get_order", "args": {"id": "7x"}, "id": "a", "type": "tool_call"}]),
        _dumpd("ToolMessage", content="Error: no order 7x", type="tool", name="get_order", tool_call_id="a",
               status="error"),
        _dumpd("AIMessageChunk", content="", type="AIMessageChunk", invalid_tool_calls=[],  # a chunk: typed by class
               tool_calls=[{"name": "get_order", "args": {"id": 7}, "id": "b", "type": "tool_call"}],
               tool_call_chunks=[{"name": "get_order", "args": '{"id": 7}', "id": "b", "index": 0,
                                  "type": "tool_call_chunk"}]),
        _dumpd("ToolMessage", content='{"total": 40}', type="tool", tool_call_id="b", status="success"),
        _dumpd("AIMessage", content=[{"type": "text", "text": "Refunded 40."}], type="ai", tool_calls=[],
               invalid_tool_calls=[]),
    ]})
    _assert_refund_run(item, error_flagged=True)

    # the agent: a name or role beside the serialization, as Who&When items give it, else the message's own name
    steps = from_whowhen({"history": [
        {"role": "human", **_dumpd("HumanMessage", content="Refund order 7, please.", type="human")},
        {"role": "Orchestrator (-> clerk)", **_dumpd("AIMessage", content="Clerk, look order 7 up.", type="ai")},
        {"name": "clerk", **_dumpd("AIMessage", content="", type="ai", name="gpt-4o", tool_calls=[
            {"name": "get_order", "args": {"id": 7}, "id": "b", "type": "tool_call"}])},
        {"name": "clerk", **_dumpd("ToolMessage", content='{"total": 40}', type="tool", tool_call_id="b")},
        _dumpd("AIMessage", content="Refunded 40.", type="ai", name="billing"),
    ]}).trajectory.steps
    assert [(s.index, s.agent, s.role) for s in steps] == [
        (0, "human", "human"), (1, "Orchestrator", "Orchestrator (-> clerk)"), (2, "clerk", "assistant"),
        (4, "billing", "assistant")]
    assert steps[2].tool_calls[0].result == '{"total": 40}' and steps[2].transfer_to is None


def test_anthropic_content_blocks_are_read_as_calls_and_answers():
    item = from_whowhen({"mistake_agent": "assistant", "mistake_step": 4, "history": [
        {"role": "user", "content": [{"type": "text", "text": "Refund order 7, please."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking it up."},
                                          {"type": "tool_use", "id": "a", "name": "get_order", "input": {"id": "7x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "is_error": True,
                                      "content": [{"type": "text", "text": "Error: no order 7x"}]}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "b", "name": "get_order", "input": {"id": 7}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b", "content": '{"total": 40}'}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Refunded 40."}, {"type": "image", "source": {}}]},
    ]})
    _assert_refund_run(item, error_flagged=True)


def test_an_openai_agents_sdk_input_list_is_read_with_its_function_call_items():
    item = from_whowhen({"mistake_agent": "assistant", "mistake_step": 4, "history": [
        {"role": "user", "content": "Refund order 7, please."},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking it up."}]},
        {"type": "function_call", "call_id": "a", "name": "get_order", "arguments": '{"id": "7x"}'},
        {"type": "function_call_output", "call_id": "a", "output": "Error: no order 7x"},
        {"type": "function_call", "call_id": "b", "name": "get_order", "arguments": '{"id": 7}'},
        {"type": "function_call_output", "call_id": "b", "output": '{"total": 40}'},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Refunded 40."}]},
    ]})
    steps = item.trajectory.steps
    assert [(s.index, s.content, [c.name for c in s.tool_calls]) for s in steps] == [
        (0, "Refund order 7, please.", []), (1, "Looking it up.", []), (2, "", ["get_order"]),
        (4, "", ["get_order"]), (6, "Refunded 40.", [])]
    # the log marks no failure; the answer reads as one
    assert steps[2].tool_calls[0].error == "Error: no order 7x" and steps[3].tool_calls[0].result == '{"total": 40}'
    assert item.label.step == 4


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"role": "assistant", "content": [{"type": "tool_use", "input": {}}]}, "history[1].content[0].name"),
        ({"type": "function_call", "call_id": "a", "arguments": "{}"}, "history[1].name"),
        ({"type": "ai", "content": "", "tool_calls": [{"args": {}}]}, "history[1].tool_calls[0].function"),
        ({"role": "assistant", "content": [7]}, "history[1].content[0]"),
        (_dumpd("AIMessage", content="", type="ai", tool_calls=[{"args": {}}]),
         "history[1].kwargs.tool_calls[0].function"),
        (_dumpd("AIMessage", content=7, type="ai"), "history[1].kwargs.content"),
        ({"lc": 1, "type": "constructor", "id": ["langchain", "schema", "document", "Document"], "kwargs": {}},
         "history[1].id"),
        ({**_dumpd("AIMessage", type="ai"), "kwargs": None}, "history[1].kwargs"),
        (_smol_action(1, "Looking.", tool_calls=[("a", "get_order", {})], error=7), "history[1].error"),
        (_smol_action(1, "Looking.", tool_calls=[("a", "get_order", {})], observations=["40"]),
         "history[1].observations"),
        ({**_smol_action(1, "Looking."), "tool_calls": {"name": "get_order"}}, "history[1].tool_calls"),
        ({**_smol_action(1, "Looking."), "model_output_message": {"role": "assistant", "tool_calls": [{"id": "a"}]}},
         "history[1].model_output_message.tool_calls[0].function"),
        (_smol_action(1, 7), "history[1].model_output"),
        ({"task": ["Refund order 7"], "task_images": None}, "history[1].task"),
    ],
)
def test_a_malformed_message_of_any_convention_names_its_field(item, field):
    with pytest.raises(DatasetError) as err:
        from_whowhen({"history": [{"role": "user", "content": "hi"}, item]})
    assert err.value.field == field


def test_smolagents_and_ag2_messages_are_read_with_their_calls_and_answers():
    smol = from_whowhen({"mistake_agent": "assistant", "mistake_step": 4, "history": [
        {"role": "user", "content": [{"type": "text", "text": "Refund order 7, please."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Looking it up."}]},
        {"role": "tool-call", "content": [{"type": "text", "text": "Calling tools:\n[{'id': 'a', 'type': 'function', "
                                           "'function': {'name': 'get_order', 'arguments': {'id': '7x'}}}]"}]},
        {"role": "tool-response", "content": [{"type": "text", "text": "Call id: a\nError: no order 7x"}]},
        {"role": "tool-call", "content": "Calling tools:\n[{'id': 'b', 'type': 'function', "
                                         "'function': {'name': 'get_order', 'arguments': {'id': 7}}}]"},
        {"role": "tool-response", "content": 'Call id: b\nObservation:\n{"total": 40}'},
        {"role": "assistant", "content": "Refunded 40."},
    ]})
    steps = smol.trajectory.steps
    assert [(s.index, s.agent, [c.name for c in s.tool_calls]) for s in steps] == [
        (0, "user", []), (1, "assistant", []), (2, "assistant", ["get_order"]), (4, "assistant", ["get_order"]),
        (6, "assistant", [])]
    assert steps[2].tool_calls[0].error == "Error: no order 7x"
    assert (steps[3].tool_calls[0].arguments, steps[3].tool_calls[0].result) == ({"id": 7}, '{"total": 40}')
    assert smol.label.step == 4

    ag2 = from_whowhen({"history": [
        {"role": "user", "name": "user", "content": "Refund order 7, please."},
        {"role": "assistant", "name": "clerk", "content": None,
         "function_call": {"name": "get_order", "arguments": '{"id": 7}'}},
        {"role": "function", "name": "get_order", "content": '{"total": 40}'},
        {"role": "assistant", "name": "clerk", "content": "",
         "tool_calls": [{"id": "r", "type": "function", "function": {"name": "refund", "arguments": '{"amount": 45}'}}]},
        {"role": "tool", "name": "clerk", "content": "", "tool_responses": [
            {"tool_call_id": "r", "role": "tool", "content": "ValueError: 45 exceeds the order total"}]},
    ]}).trajectory.steps
    assert [(s.index, s.agent) for s in ag2] == [(0, "user"), (1, "clerk"), (3, "clerk")]
    assert ag2[1].tool_calls[0].result == '{"total": 40}'
    assert ag2[2].tool_calls[0].error == "ValueError: 45 exceeds the order total"


def test_smolagents_memory_steps_are_read_with_their_calls_answers_and_errors():
    tool_failed = "Error executing tool 'get_order' with arguments {'id': '7x'}: ValueError: no order 7x"
    code_failed = "Code execution failed at line 'refund(45)' due to: ValueError: 45 exceeds the order total"
    parse_failed = "Error while parsing tool call from model output: no JSON blob found"
    item = from_whowhen({"mistake_agent": "clerk", "mistake_step": 5, "history": [
        {"task": "Refund order 7, please.", "task_images": None},
        {"name": "planner", "model_input_messages": _SMOL_PROMPT, "plan": "1. look order 7 up\n2. refund its total",
         "model_output_message": {"role": "assistant", "content": "1. look order 7 up\n2. refund its total",
                                  "tool_calls": None, "raw": None, "token_usage": None},
         "timing": {"start_time": 1.0, "end_time": 2.0, "duration": 1.0}, "token_usage": None},
        # a ToolCallingAgent's call that raised: smolagents recorded no tool_calls, the model's message has them
        {"name": "clerk", **_smol_action(1, "Looking it up.", model_calls=[("a", "get_order", {"id": "7x"})],
                                         error={"type": "AgentToolExecutionError", "message": tool_failed})},
        {"name": "clerk", **_smol_action(2, None, tool_calls=[("b", "get_order", {"id": "7"})],
                                         model_calls=[("b", "get_order", {"id": "7"})], observations='{"total": 40}')},
        {"name": "clerk", **_smol_action(3, None, tool_calls=[("c", "get_refund_window", {"id": "7"})],
                                         model_calls=[("c", "get_refund_window", {"id": "7"})],
                                         observations="Error: no refund window for order 7")},
        # a CodeAgent's step: the code is the call; what it printed before it failed is kept
        {"name": "clerk", **_smol_action(4, "Thought: refund it.\n<code>\nprint('refunding')\nrefund(45)\n</code>",
                                         tool_calls=[("call_4", "python_interpreter",
                                                      "print('refunding')\nrefund(45)")],
                                         observations="Execution logs:\nrefunding\n",
                                         error={"type": "AgentExecutionError", "message": code_failed})},
        {"name": "clerk", **_smol_action(5, "I will refund 40 now", error={"type": "AgentParsingError",
                                                                             "message": parse_failed})},
        {"name": "clerk", **_smol_action(6, None, tool_calls=[("d", "final_answer", {"answer": "Refunded 40."})],
                                         model_calls=[("d", "final_answer", {"answer": "Refunded 40."})],
                                         observations="Refunded 40.")},
    ]})
    steps = item.trajectory.steps
    assert [(s.index, s.agent, s.content) for s in steps] == [
        (0, "user", "Refund order 7, please."), (1, "planner", "1. look order 7 up\n2. refund its total"),
        (2, "clerk", "Looking it up."), (3, "clerk", ""), (4, "clerk", ""),
        (5, "clerk", "Thought: refund it.\n<code>\nprint('refunding')\nrefund(45)\n</code>"),
        (6, "clerk", "I will refund 40 now"), (7, "clerk", "")]
    assert not any("expert assistant" in s.content for s in steps)  # the prompt is an input, not words
    answers = [[(c.name, c.arguments, c.result, c.error) for c in s.tool_calls] for s in steps[2:]]
    assert answers == [
        [("get_order", {"id": "7x"}, None, tool_failed)],
        [("get_order", {"id": "7"}, '{"total": 40}', None)],
        [("get_refund_window", {"id": "7"}, None, "Error: no refund window for order 7")],  # reads as a failure
        [("python_interpreter", "print('refunding')\nrefund(45)", "Execution logs:\nrefunding\n", code_failed)],
        [],
        [("final_answer", {"answer": "Refunded 40."}, "Refunded 40.", None)]]
    assert steps[6].error == parse_failed and steps[5].error is None  # a step without a call fails itself
    assert (item.label.step, item.subset) == (5, "chat")


@pytest.mark.parametrize(("text", "failed"), [
    ("Error: no order 7x", True), ("error:\nboom", True), ("ValueError('bad id')", True),
    ("pydantic_ai.exceptions.ToolRetryError: timed out", True), ("An error occurred while running the tool.", True),
    ("Traceback (most recent call last):\n  File ...", True),
    ("Error rate: 5% this week", False), ('{"error": null, "total": 40}', False), ("No errors found.", False),
])
def test_a_tool_answer_reads_as_a_failure_only_when_it_starts_like_one(text, failed):
    from agenttrace.data.messages import reads_as_failure

    assert reads_as_failure(text) is failed


def test_a_browsing_agents_report_is_its_action_and_a_call_whose_result_is_the_page():
    page = ("Here is a screenshot of [Eiffel Tower - Wikipedia](https://en.wikipedia.org/wiki/Eiffel_Tower). "
            "The viewport shows 12% of the webpage.\nAutomatic OCR: the tower is 330 m tall since 2022.")
    steps = from_whowhen({"history": [
        {"role": "human", "content": "How tall is the Eiffel Tower today?"},
        {"role": "WebSurfer", "content": f"I typed 'Eiffel Tower height' into the browser search bar.\n\n{page}"},
        {"role": "WebSurfer", "content": "I scrolled down one page in the browser.\n\nThe viewport shows 20%."},
        {"role": "WebSurfer", "content": "I clicked the height section, which says 330 m."},  # no page: words
    ]}).trajectory.steps
    typed, = steps[1].tool_calls
    assert steps[1].content == "I typed 'Eiffel Tower height' into the browser search bar."
    assert (typed.name, typed.arguments, typed.result) == ("typed", "Eiffel Tower height", page)
    assert [(c.name, c.arguments, c.result) for c in steps[2].tool_calls] == [("scrolled", None, "The viewport shows 20%.")]
    assert steps[3].tool_calls == [] and steps[3].content.endswith("330 m.")
