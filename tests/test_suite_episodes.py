"""The suite's episodes on paper (no framework): a decisive error that a teammate notices but does not repair,
a misspelt tool argument whose failure the agent papers over with a guess, a timed-out call the agent does not
retry, and the script of a run that ends inside a delegation."""

from __future__ import annotations

import pytest

pytest.importorskip("agenttrace_collector")

from agenttrace.models import ENVIRONMENT  # noqa: E402
from agenttrace.suite.episodes import make_episode  # noqa: E402
from agenttrace.suite.plan import ToolUse, Turn  # noqa: E402
from agenttrace.suite.script import delegation_replies  # noqa: E402
from agenttrace.suite.simulate import DOUBTS  # noqa: E402
from agenttrace.suite.taxonomy import ErrorKind  # noqa: E402
from agenttrace.suite.topologies import TOPOLOGIES  # noqa: E402
from agenttrace.suite.worlds import ToolError  # noqa: E402
from agenttrace_collector.failure import answer_matches  # noqa: E402


def _doubts(script) -> list[int]:
    return [k for k, turn in enumerate(script.turns) if turn.text.startswith(DOUBTS)]


def test_a_noticed_error_is_doubted_once_by_someone_else_after_it_and_the_run_still_fails():
    episodes = [e for i in range(60) if (e := make_episode("langgraph", 7, i, tuple(TOPOLOGIES))) is not None]
    noticed = [e for e in episodes if e.faulty.noticed]
    assert 5 <= len(noticed) < len(episodes)
    for e in episodes:
        faulty, clean = e.faulty, e.clean
        assert _doubts(clean) == [] and not clean.noticed
        assert not answer_matches(faulty.answer, e.expected) and answer_matches(clean.answer, e.expected)
        if not faulty.noticed:
            assert _doubts(faulty) == []
            continue
        [at] = _doubts(faulty)
        assert at > faulty.label_turn
        assert faulty.turns[at].agent not in (faulty.label_agent, ENVIRONMENT)
        # nobody else spoke between the error and the doubt: it is the first reaction to it
        assert {t.agent for t in faulty.turns[faulty.label_turn + 1:at]} <= {faulty.label_agent}


def test_a_misspelt_argument_fails_and_the_failed_call_not_the_guess_after_it_is_decisive():
    episodes = [e for i in range(88) if (e := make_episode("langgraph", 20250901, i, tuple(TOPOLOGIES))) is not None
                and e.kind is ErrorKind.WRONG_TOOL_ARGUMENT]
    typos = [e for e in episodes
             if (e.task.family.item_arg in (call := e.faulty.turns[e.faulty.label_turn].calls[0]).arguments)
             and call.arguments[e.task.family.item_arg] not in e.task.family.items]
    assert typos
    for e in typos:
        call = e.faulty.turns[e.faulty.label_turn].calls[0]
        typo = call.arguments[e.task.family.item_arg]
        with pytest.raises(ToolError, match="not found"):
            e.world.tools()[call.name](**call.arguments)
        after = e.faulty.turns[e.faulty.label_turn + 1]
        assert after.agent == e.faulty.label_agent and "failed; I'll assume" in after.text
        assert typo not in str([t.calls for t in e.clean.turns])
        assert "misspelt" not in e.faulty.reason and typo in e.faulty.reason


def test_an_agent_that_does_not_retry_a_timeout_guesses_or_gives_up_and_is_to_blame_either_way():
    episodes = [e for i in range(88) if (e := make_episode("langgraph", 20250901, i, tuple(TOPOLOGIES))) is not None
                and e.kind is ErrorKind.IGNORED_TOOL_ERROR]
    gave_up = [e for e in episodes if "gave up" in e.faulty.reason]
    assert 0 < len(gave_up) < len(episodes)  # both ways are in the suite
    for e in episodes:
        faulty = e.faulty
        [timed_out] = faulty.flaky
        call = next(t for t in faulty.turns[:faulty.label_turn] if any(
            c.arguments.get(e.task.family.item_arg) == timed_out for c in t.calls))
        blamed = faulty.turns[faulty.label_turn]
        assert blamed.agent == call.agent == faulty.label_agent != ENVIRONMENT
        if e in gave_up:  # it stops, naming the tool, in the words an outage's agent uses; the run ends there
            assert call.calls[0].name in blamed.text and not blamed.calls
            assert faulty.label_turn == len(faulty.turns) - 1 and faulty.answer == blamed.text
        else:
            assert "failed; I'll assume" in blamed.text
        # the clean run meets the same timeout and retries the same call
        retried = [t for t in e.clean.turns if call.calls[0] in t.calls]
        assert len(retried) == 2 and answer_matches(e.clean.answer, e.expected)


def test_when_a_teammate_gives_up_inside_a_delegation_each_waiting_caller_passes_its_words_on():
    turns = (Turn("lead", "Look up the kettle.", handoff="worker"),
             Turn("worker", "Checking.", calls=(ToolUse("get_price", {"product": "kettle"}),)),
             Turn("worker", "I keep getting the same result and cannot complete the task."))
    replies = delegation_replies(turns, lambda target, text: {"name": target, "arguments": {"task": text}},
                                 lambda text: None)
    assert [agent for agent, _ in replies] == ["lead", "worker", "worker", "lead"]
    assert replies[-1][1] == "I keep getting the same result and cannot complete the task."
    # a run that ends with the lead's own answer needs nothing more
    closed = turns[:2] + (Turn("worker", "kettle: 40 EUR", handoff="lead"), Turn("lead", "40 EUR"))
    assert [a for a, _ in delegation_replies(closed, lambda t, x: {"name": t}, lambda x: None)] == \
        ["lead", "worker", "worker", "lead"]


def test_a_dropped_constraint_can_sit_in_a_later_hand_over_of_the_planner_not_only_in_its_plan():
    episodes = [e for fw in ("langgraph", "crewai") for i in range(88)
                if (e := make_episode(fw, 20250901, i, tuple(TOPOLOGIES))) is not None
                and e.kind is ErrorKind.PLAN_DROPS_CONSTRAINT]
    later = [e for e in episodes if any(t.agent == e.faulty.label_agent and t.handoff
                                        for t in e.faulty.turns[:e.faulty.label_turn])]
    assert episodes and 0 < len(later) < len(episodes)
    for e in later:
        qualifier = f"{e.task.family.qualifier_arg}: {e.task.qualifier}"
        blamed, fixed = e.faulty.turns[e.faulty.label_turn], e.clean.turns[e.faulty.label_turn]
        first = next(t for t in e.faulty.turns if t.agent == e.faulty.label_agent)
        assert qualifier in first.text and qualifier not in blamed.text and qualifier in fixed.text
        assert blamed.agent == fixed.agent == e.first_agent and blamed.handoff


def test_a_group_chat_is_closed_by_the_analyst_or_by_the_selector_relaying_the_analysts_result():
    episodes = [e for i in range(88) if (e := make_episode("langgraph", 20250901, i, ("group_chat",))) is not None]
    closers = {e.faulty.turns[-1].agent == e.first_agent for e in episodes if e.kind is not ErrorKind.LOOPING}
    assert closers == {True, False}
    relayed = [e for e in episodes if e.kind is ErrorKind.WRONG_SYNTHESIS and e.faulty.turns[-1].agent == e.first_agent]
    assert relayed
    for e in relayed:
        blamed = e.faulty.turns[e.faulty.label_turn]
        assert e.faulty.label_turn == len(e.faulty.turns) - 2 and blamed.handoff == e.first_agent
        assert e.faulty.answer in blamed.text and e.faulty.answer in e.faulty.turns[-1].text
