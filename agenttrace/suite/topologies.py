"""Team shapes: who is in the team, what each member does, and the order in which they play a task.

Every shape has a worker with the current data and an archivist whose tool reads the stale archive (the
wrong place to delegate to). Agent names are drawn per run from small pools, so no name marks a role.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from agenttrace.suite.simulate import Simulation

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "lead": ("supervisor", "coordinator", "orchestrator", "team_lead"),
    "worker": ("researcher", "data_agent", "lookup_agent", "scout", "analyst_bot"),
    "worker_b": ("field_agent", "fetcher", "operator", "clerk"),
    "archivist": ("archivist", "history_desk", "records_agent", "librarian"),
    "analyst": ("analyst", "calculator_agent", "reviewer", "accountant"),
    "writer": ("writer", "reporter", "responder", "editor"),
    "intake": ("intake", "triage", "dispatcher", "front_desk"),
    "planner": ("planner", "strategist", "architect"),
    "verifier": ("verifier", "checker", "auditor"),
    "user": ("customer", "client", "shopper", "caller"),
    "assistant": ("assistant", "support_agent", "concierge", "helpdesk"),
    "manager": ("manager", "director", "head"),
    "lead_a": ("lead_one", "pricing_lead", "north_lead"),
    "lead_b": ("lead_two", "ops_lead", "south_lead"),
}

ROLE_DUTIES: dict[str, str] = {
    "lead": "You coordinate the team: delegate lookups to workers and write the final answer.",
    "worker": "You look values up with your tool (current data) and report them.",
    "worker_b": "You look values up with your tool (current data) and report them.",
    "archivist": "You look values up in last period's archive and report them.",
    "analyst": "You combine the values the team found into the answer.",
    "writer": "You write the final answer for the user.",
    "intake": "You read the request, write a plan and pass it on.",
    "planner": "You plan the work and hand it to the executor.",
    "verifier": "You check the results and give the final answer.",
    "user": "You are the user: say what you need and answer questions about it.",
    "assistant": "You help the user with your tools and give the final answer.",
    "manager": "You run the crew: give each lead its part and write the final answer.",
    "lead_a": "You lead a team: pass your part to your worker and report back.",
    "lead_b": "You lead a team: pass your part to your worker and report back.",
}

LOOKERS = ("worker", "worker_b", "assistant")


@dataclass(frozen=True)
class Topology:
    name: str
    roles: tuple[str, ...]
    play: Callable[[Simulation, dict[str, str]], None]   # role -> agent name
    first: str                                           # the role that receives the task

    def names(self, rng: random.Random) -> dict[str, str]:
        return {role: rng.choice(ROLE_NAMES[role]) for role in self.roles}


def _groups(items: list[str], size: int) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def supervisor(sim: Simulation, n: dict[str, str]) -> None:
    for i, group in enumerate(_groups(sim.items, 2)):
        worker = sim.delegate(n["lead"], n["worker"], group, stale=n["archivist"], brief=i == 0)
        sim.gather(worker, group, report_to=n["lead"])
    sim.final(n["lead"])


def handoff_chain(sim: Simulation, n: dict[str, str]) -> None:
    worker = sim.delegate(n["intake"], n["worker"], sim.items, stale=n["archivist"], brief=True)
    sim.gather(worker, sim.items, report_to=n["analyst"])
    sim.analyse(n["analyst"], to=n["writer"])
    sim.final(n["writer"], relay=True)


def group_chat(sim: Simulation, n: dict[str, str]) -> None:
    """A selector picks the next speaker each round; speakers hand back to it. The analyst answers, or (in
    about half the runs) hands its result back to the selector, which answers."""
    speakers = [n["worker"], n["worker_b"]]
    for i, item in enumerate(sim.items):
        worker = sim.delegate(n["lead"], speakers[i % 2], [item], stale=n["archivist"], brief=i == 0)
        sim.gather(worker, [item], report_to=n["lead"])
    sim.delegate(n["lead"], n["analyst"], [])
    if random.Random(f"{sim.seed}:closer").random() < 0.5:
        sim.analyse(n["analyst"], to=n["lead"])
        sim.final(n["lead"], relay=True)
    else:
        sim.final(n["analyst"])


def planner_executor_verifier(sim: Simulation, n: dict[str, str]) -> None:
    worker = sim.delegate(n["planner"], n["worker"], sim.items, stale=n["archivist"], brief=True)
    sim.gather(worker, sim.items, report_to=n["verifier"])
    sim.final(n["verifier"])


def assistant_with_user(sim: Simulation, n: dict[str, str]) -> None:
    sim.user_request(n["user"], to=n["assistant"])
    sim.ask_user(n["assistant"], n["user"])
    sim.user_answers(n["user"], to=n["assistant"])
    sim.gather(n["assistant"], sim.items, report_to=n["user"])
    sim.user_confirms(n["user"], to=n["assistant"])
    sim.final(n["assistant"])


def hierarchical_crew(sim: Simulation, n: dict[str, str]) -> None:
    half = (len(sim.items) + 1) // 2
    for i, (lead, worker, group) in enumerate(((n["lead_a"], n["worker"], sim.items[:half]),
                                               (n["lead_b"], n["worker_b"], sim.items[half:]))):
        sim.delegate(n["manager"], lead, group, brief=i == 0)
        actual = sim.delegate(lead, worker, group, stale=n["archivist"])
        sim.gather(actual, group, report_to=lead)
        sim.relay(lead, group, to=n["manager"])
    sim.final(n["manager"])


TOPOLOGIES: dict[str, Topology] = {t.name: t for t in (
    Topology("supervisor", ("lead", "worker", "archivist"), supervisor, "lead"),
    Topology("handoff_chain", ("intake", "worker", "archivist", "analyst", "writer"), handoff_chain, "intake"),
    Topology("group_chat", ("lead", "worker", "worker_b", "archivist", "analyst"), group_chat, "lead"),
    Topology("planner_executor_verifier", ("planner", "worker", "archivist", "verifier"), planner_executor_verifier,
             "planner"),
    Topology("assistant_with_user", ("user", "assistant"), assistant_with_user, "user"),
    Topology("hierarchical_crew", ("manager", "lead_a", "lead_b", "worker", "worker_b", "archivist"),
             hierarchical_crew, "manager"),
)}
