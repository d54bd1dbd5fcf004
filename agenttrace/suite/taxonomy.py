"""The kinds of decisive error the suite plants, and how a failure that is no agent's fault is labelled."""

from __future__ import annotations

from enum import Enum

# A label whose agent is agenttrace.models.ENVIRONMENT blames the environment (a tool's service), not an agent:
# its step is the step whose tool call the environment failed. A user's error blames the simulated user's own
# agent name.


class ErrorKind(str, Enum):
    WRONG_TOOL_ARGUMENT = "wrong_tool_argument"        # calls a tool with an item or qualifier the task did not ask for
                                                       # (or a misspelt item: the call fails and the agent guesses)
    MISREAD_TOOL_RESULT = "misread_tool_result"        # reports a value other than the one its tool returned
    INVENTED_FACT = "invented_fact"                    # states a value it never looked up
    PLAN_DROPS_CONSTRAINT = "plan_drops_constraint"    # a plan or brief leaves out the task's qualifier
    WRONG_HANDOFF = "wrong_handoff"                    # delegates to the worker with the wrong (stale) data source
    IGNORED_TOOL_ERROR = "ignored_tool_error"          # a tool fails (transiently) and the agent guesses or gives up
                                                       # instead of retrying
    STOPPED_EARLY = "stopped_early"                    # reports back before looking everything up
    LOOPING = "looping"                                # repeats the same tool call until it gives up
    WRONG_SYNTHESIS = "wrong_synthesis"                # combines correct inputs into a wrong answer
    USER_ERROR = "user_error"                          # the simulated user states a wrong detail
    ENVIRONMENT_FAULT = "environment_fault"            # a tool's service is down: no agent's fault


DESCRIPTIONS: dict[ErrorKind, str] = {
    ErrorKind.WRONG_TOOL_ARGUMENT: "called {tool} with {argument}={wrong!r} although the task asks for {right!r}",
    ErrorKind.MISREAD_TOOL_RESULT: "reported {item} as {wrong} although {tool} returned {right}",
    ErrorKind.INVENTED_FACT: "stated {item} = {wrong} without looking it up (the tool gives {right})",
    ErrorKind.PLAN_DROPS_CONSTRAINT: "its plan or hand-over leaves out {argument}={right!r}; later lookups use {wrong!r}",
    ErrorKind.WRONG_HANDOFF: "delegated to {wrong}, whose data is stale, instead of {right}",
    ErrorKind.IGNORED_TOOL_ERROR: "{tool} timed out for {item} and the agent {instead} instead of retrying",
    ErrorKind.STOPPED_EARLY: "reported back after {done} of {total} lookups; {missing} never looked up",
    ErrorKind.LOOPING: "repeated the same {tool} call for {item} instead of reporting its result",
    ErrorKind.WRONG_SYNTHESIS: "combined correct inputs into {wrong} instead of {right}",
    ErrorKind.USER_ERROR: "the user said {wrong} although the task is about {right}",
    ErrorKind.ENVIRONMENT_FAULT: "{tool} is down for {item}: the run cannot succeed whatever the agents do",
}
