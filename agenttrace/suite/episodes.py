"""Seeded episodes: a world, a task, a team shape, and one planted error at an early, middle or late site.

Episode ``index`` of a framework gets error kind ``index mod |kinds|`` (in a per-framework seeded order), a
target position that cycles early/middle/late and a topology in turn (the next one where the kind cannot sit);
the rest (world, task values, wording, names, topology,
whether an earlier error is made and repaired, whether the decisive one is noticed, whether an agent that does
not retry a timed-out call gives up or guesses) is drawn from ``random.Random(seed)``. An episode is kept
only if, on paper, the faulty run's answer is wrong and the clean run's is right; the real runs decide.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from agenttrace.suite.plan import AgentSpec, Script, Task
from agenttrace.suite.simulate import Fault, RunEnds, Simulation
from agenttrace.suite.taxonomy import ErrorKind
from agenttrace.suite.topologies import LOOKERS, ROLE_DUTIES, TOPOLOGIES, Topology
from agenttrace.suite.worlds import FAMILIES, Family, World
from agenttrace_collector.failure import answer_matches

POSITIONS = ("early", "middle", "late")
REPAIR_RATE = 0.35
NOTICE_RATE = 0.3
GIVE_UP_RATE = 0.5  # of the episodes whose agent does not retry a timed-out call: it gives up instead of guessing
ATTEMPTS = 30
TRIES_PER_TOPOLOGY = 4


@dataclass(frozen=True)
class Episode:
    seed: str
    topology: str
    kind: ErrorKind
    task: Task
    expected: str
    world: World
    agents: tuple[AgentSpec, ...]
    first_agent: str
    faulty: Script
    clean: Script


def position(step: int, n_steps: int) -> str:
    """early / middle / late: which third of the run the step is in."""
    return POSITIONS[min(2, 3 * step // max(1, n_steps))]


def make_episode(framework: str, base_seed: int, index: int,
                 topologies: tuple[str, ...] = tuple(TOPOLOGIES)) -> Episode | None:
    kinds = kinds_for(topologies)
    random.Random(f"{base_seed}:{framework}").shuffle(kinds)
    kind = kinds[index % len(kinds)]
    target = POSITIONS[(index // len(kinds)) % len(POSITIONS)]
    seed = f"{base_seed}:{framework}:{index}"
    rng = random.Random(seed)
    want_repair = rng.random() < REPAIR_RATE
    want_notice = rng.random() < NOTICE_RATE
    # its own rng: a draw from ``rng`` would move every later draw of the episode (its world, task and names)
    want_give_up = random.Random(f"{seed}:give-up").random() < GIVE_UP_RATE
    # topologies in turn (balanced over a framework's episodes): a few tasks on this one, then the next ones
    order = [topologies[(index + k) % len(topologies)] for k in range(len(topologies))]
    for attempt in range(ATTEMPTS):
        topology = TOPOLOGIES[order[attempt // TRIES_PER_TOPOLOGY % len(order)]]
        family = FAMILIES[rng.choice(sorted(FAMILIES))]
        task = _task(family, rng)
        episode = _plant(f"{seed}:{attempt}", topology, topology.names(rng), World.create(family, rng), task, kind,
                         target, want_repair, want_notice, want_give_up)
        if episode is not None:
            return episode
    return None


def kinds_for(topologies: tuple[str, ...]) -> list[ErrorKind]:
    """The error kinds that can sit somewhere in these team shapes (probed on a four-item task)."""
    family = FAMILIES["catalogue"]
    task = Task(family, family.items[:4], family.qualifiers[0], "sum", dict.fromkeys(family.items[:4], 1))
    world = World.create(family, random.Random(0))
    found = {site.kind for name in topologies
             for site in _play("probe", TOPOLOGIES[name], TOPOLOGIES[name].names(random.Random(0)), world, task).sites}
    return [kind for kind in ErrorKind if kind in found]


def _task(family: Family, rng: random.Random) -> Task:
    combine = rng.choice(family.combines)
    items = tuple(rng.sample(family.items, rng.randint(2, 4)))
    qualifier = rng.choice([q for q in family.qualifiers if q != family.default_qualifier])
    quantities = {i: rng.randint(1, 5) for i in items} if family.quantities and combine == "sum" else {}
    listed = ", ".join(f"{quantities[i]} x {i}" if quantities else i for i in items)
    where = f"{family.qualifier_arg} {qualifier}"
    if combine == "sum":
        text = rng.choice(("What is the total {m} of {l} for {w}? Use current data; answer with the number.",
                           "Add up the current {m} of {l} ({w}). Reply with the total in {u}.",
                           "Using today's data for {w}, how much is the {m} of {l} in total?"))
    else:
        text = rng.choice(("Which is {h} of {l} for {w}, according to current data?",
                           "Among {l}: which is {h} ({w}, current data)? Answer with its name.",
                           "For {w}, find {h} of these using current data: {l}."))
    text = text.format(m=family.measure, l=listed, w=where, u=family.unit, h=family.highest)
    return Task(family, items, qualifier, combine, quantities, text)


def _play(seed: str, topology: Topology, names: dict[str, str], world: World, task: Task,
          fault: Fault | None = None, repair: Fault | None = None, clean: bool = False,
          notice: bool = False, give_up: bool = False) -> Simulation:
    tool_of = {names[r]: (task.family.tool, False) for r in LOOKERS if r in names}
    if "archivist" in names:
        tool_of[names["archivist"]] = (task.family.archive_tool, True)
    sim = Simulation(world, task, seed, tool_of, fault, repair, clean, notice, give_up)
    try:
        topology.play(sim, names)
    except RunEnds:
        pass
    return sim


def _plant(seed: str, topology: Topology, names: dict[str, str], world: World, task: Task, kind: ErrorKind,
           target: str, want_repair: bool, want_notice: bool, want_give_up: bool) -> Episode | None:
    expected = task.expected(world)
    probe = _play(seed, topology, names, world, task)
    assert answer_matches(probe.answer, expected), (probe.answer, expected)
    n_turns = len(probe.turns)
    sites = [s for s in probe.sites if s.kind is kind]
    fixable = [(r, s.turn) for r, s in enumerate(s for s in probe.sites if s.kind is ErrorKind.WRONG_TOOL_ARGUMENT)]
    by_fit = sorted(range(len(sites)), key=lambda n: (position(sites[n].turn, n_turns) != target,
                                                      random.Random(f"{seed}:{n}").random()))
    for n in by_fit:
        this_lookup = max((turn for _, turn in fixable if turn <= sites[n].turn), default=-1)
        earlier = [r for r, turn in fixable if turn < this_lookup]  # a repair in an earlier lookup
        repair = Fault(ErrorKind.WRONG_TOOL_ARGUMENT, earlier[-1]) if want_repair and earlier else None
        faulty = _play(seed, topology, names, world, task, Fault(kind, n), repair, notice=want_notice,
                       give_up=want_give_up)
        clean = _play(seed, topology, names, world, task, Fault(kind, n), repair, clean=True)
        if faulty.label and not answer_matches(faulty.answer, expected) and answer_matches(clean.answer, expected):
            agents = tuple(AgentSpec(name, f"Your name is {name}. {ROLE_DUTIES[role]}",
                                     (faulty.tool_of[name][0],) if name in faulty.tool_of else ())
                           for role, name in names.items())
            return Episode(seed, topology.name, kind, task, expected, world, agents, names[topology.first],
                           faulty.script(), clean.script())
    return None
