"""The demo's multi-agent team, scripted (no LLM), traced with agenttrace's manual API.

Planner splits the task, Researcher looks facts up with a tool, Calculator does
the arithmetic with a tool, Writer states the answer. ``seed_error=True`` makes
the Calculator copy a number wrongly - the decisive error the attributor should
find. An agent that has received a lesson about its mistake re-checks its
inputs and does not repeat it: that is the feedback loop the demo shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import agenttrace

TASK = ("A warehouse has 3 shelves holding 48 boxes each. 17 boxes are shipped out today. "
        "How many boxes are left in the warehouse?")
EXPECTED = "127"
FACTS = {"shelves": 3, "boxes per shelf": 48, "boxes shipped": 17}


@dataclass
class ResearchTeam:
    seed_error: bool = True
    lessons: dict[str, list[str]] = field(default_factory=dict)

    def learn(self, agent: str, lesson: str) -> None:
        self.lessons.setdefault(agent, []).append(lesson)

    def solve(self, task: str = TASK, expected: str | None = EXPECTED) -> agenttrace.Run:
        """One traced run; the collector judges its answer against ``expected``."""
        with agenttrace.run("warehouse-count", task=task, expected=expected) as run:
            plan = self._planner(task)
            facts = self._researcher(plan)
            result = self._calculator(facts)
            run.finish(self._writer(result))
        return run

    def _planner(self, task: str) -> str:
        with agenttrace.agent_step("Planner", input=task) as step:
            plan = ("1. Researcher: find the number of shelves, boxes per shelf and boxes shipped. "
                    "2. Calculator: compute shelves * boxes per shelf - boxes shipped. 3. Writer: state the number.")
            step.output(plan)
            step.transfer("Researcher")
        return plan

    def _researcher(self, plan: str) -> dict[str, int]:
        with agenttrace.agent_step("Researcher", input=plan) as step:
            found = {}
            for key in FACTS:
                with agenttrace.tool_call("lookup", {"fact": key}) as call:
                    found[key] = FACTS[key]
                    call.result(found[key])
            step.output("Facts: " + ", ".join(f"{k} = {v}" for k, v in found.items()))
            step.transfer("Calculator")
        return found

    def _calculator(self, facts: dict[str, int]) -> int:
        careful = bool(self.lessons.get("Calculator"))
        per_shelf = facts["boxes per shelf"]
        if self.seed_error and not careful:
            per_shelf = 46  # misread 48 as 46: the seeded decisive error
        expression = f"{facts['shelves']} * {per_shelf} - {facts['boxes shipped']}"
        with agenttrace.agent_step("Calculator", input=str(facts)) as step:
            with agenttrace.tool_call("calculate", {"expression": expression}) as call:
                value = _evaluate(expression)
                call.result(value)
            note = " I re-checked every input against the Researcher's facts." if careful else ""
            step.output(f"Using {facts['shelves']} shelves of {per_shelf} boxes and {facts['boxes shipped']} "
                        f"shipped: {expression} = {value}.{note}")
            step.transfer("Writer")
        return value

    def _writer(self, result: int) -> str:
        with agenttrace.agent_step("Writer", input=str(result)) as step:
            answer = str(result)
            step.output(f"The warehouse has {answer} boxes left.")
        return answer


def _evaluate(expression: str) -> int:
    if not re.fullmatch(r"[\d\s*+-]+", expression):
        raise ValueError(f"calculate accepts integers with + - * only, got {expression!r}")
    total = 0
    for sign, term in re.findall(r"([+-]?)\s*([\d\s*]+)", expression.replace(" ", "")):
        product = 1
        for factor in term.split("*"):
            product *= int(factor)
        total += -product if sign == "-" else product
    return total

