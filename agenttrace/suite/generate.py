"""Generating one framework's part of the suite: run each episode twice (with and without its planted error)
through the real framework, instrumented by agenttrace and exported to a real collector, and keep the
collector-rebuilt faulty trajectory when replay confirms the label (the faulty run fails, the clean one
succeeds, and the planted turn is found in the rebuilt steps). Items that do not confirm are dropped and counted.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import agenttrace
from agenttrace.local_collector import LocalCollector
from agenttrace.logs import get_logger
from agenttrace.models import LabelledTrajectory, Outcome
from agenttrace.suite import drivers
from agenttrace.suite.episodes import Episode, make_episode, position
from agenttrace.suite.labels import labelled_step, record
from agenttrace.suite.plan import Script
from agenttrace.suite.script import model_script
from agenttrace.suite.topologies import TOPOLOGIES
from agenttrace.testing.scripted_llm import ScriptedLLM

log = get_logger("agenttrace.suite")


@dataclass
class Result:
    framework: str
    items: list[LabelledTrajectory] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)   # reason -> count
    seconds: float = 0.0


async def _run(driver, episode: Episode, script: Script, declare_team: bool) -> str:
    """One real run; returns its run id (an exception in the framework is recorded as the run's failure). Without
    ``declare_team`` the app declares no team: the run has the one its framework's integration declares, if any."""
    tools = episode.world.copy(flaky=set(script.flaky), down=set(script.down)).tools()
    with ScriptedLLM(model_script(episode.agents, driver.replies(script.turns))) as llm:
        team = {spec.name: [tools[name] for name in spec.tools] for spec in episode.agents}  # as an app declares it
        run = agenttrace.run(f"suite-{episode.topology}", task=episode.task.text, expected=episode.expected,
                             team=team if declare_team else None)
        try:
            async with run:
                run.finish(await driver.run(episode, tools, llm.base_url))
        except Exception as exc:  # noqa: BLE001 - the framework's failure is data: the collector records it
            log.info("suite.run_raised", seed=episode.seed, error=f"{type(exc).__name__}: {exc}"[:300])
    return run.run_id


def generate(framework: str, n: int, seed: int, *, topologies: tuple[str, ...] = tuple(TOPOLOGIES),
             workdir: Path | None = None, declare_team: bool = True) -> Result:
    """``n`` episodes of ``framework`` in the ``topologies`` its driver can play (fewer items come back when some
    do not confirm); ``declare_team``: each run declares its team as an app would (else see :func:`_run`)."""
    driver = drivers.load(framework)
    topologies = tuple(t for t in topologies if t in driver.topologies)
    result = Result(framework)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        db_dir = workdir or Path(tmp)
        with LocalCollector(db_dir / f"suite-{framework}.db", attributor="none", extra_args=("--settle", "0.1"),
                            log_file=db_dir / f"collector-{framework}.log") as collector:
            agenttrace.instrument(endpoint=collector.endpoint, service_name=f"suite-{framework}",
                                  frameworks=[driver.integration])
            try:
                runs = asyncio.run(_run_all(driver, framework, n, seed, topologies, result, declare_team))
                for episode, faulty_id, clean_id in runs:
                    try:
                        faulty, clean = collector.wait_run(faulty_id)[0], collector.wait_run(clean_id)[0]
                    except TimeoutError:
                        result.dropped["run_not_assembled"] += 1
                        log.warning("suite.not_assembled", seed=episode.seed)
                        continue
                    _confirm(framework, episode, faulty, clean, result)
            finally:
                agenttrace.uninstrument()
    result.seconds = time.monotonic() - started
    log.info("suite.generated", framework=framework, kept=len(result.items), dropped=dict(result.dropped),
             seconds=round(result.seconds, 1))
    return result


async def _run_all(driver, framework: str, n: int, seed: int, topologies: tuple[str, ...], result: Result,
                   declare_team: bool):
    runs = []
    for index in range(n):
        episode = make_episode(framework, seed, index, topologies)
        if episode is None:
            result.dropped["no_fitting_site"] += 1
            continue
        runs.append((episode, await _run(driver, episode, episode.faulty, declare_team),
                     await _run(driver, episode, episode.clean, declare_team)))
        agenttrace.flush()  # each pair exported before the next: a long generation never overflows the span queue
        if (index + 1) % 10 == 0 or index + 1 == n:
            log.info("suite.progress", framework=framework, done=index + 1, of=n)
    return runs


def _confirm(framework: str, episode: Episode, faulty, clean, result: Result) -> None:
    script = episode.faulty
    if faulty.outcome is not Outcome.FAILURE:
        reason = "faulty_run_did_not_fail"
    elif clean.outcome is not Outcome.SUCCESS:
        reason = "clean_replay_did_not_succeed"
    elif (step := labelled_step(script.turns, script.label_turn, faulty)) is None:
        reason = "planted_turn_not_in_trajectory"
    else:
        tags = {"topology": episode.topology, "error_kind": episode.kind.value,
                "position": position(step, len(faulty.steps)), "repaired": "yes" if script.repaired else "no",
                "noticed": "yes" if script.noticed else "no",
                "seed": episode.seed, "world": episode.task.family.name}
        result.items.append(record(f"suite-{episode.seed}", framework, faulty, script.label_agent, step, script.reason,
                                   tags))
        return
    result.dropped[reason] += 1
    log.warning("suite.dropped", seed=episode.seed, reason=reason, kind=episode.kind.value,
                topology=episode.topology, faulty=faulty.outcome.value, clean=clean.outcome.value,
                clean_failure=clean.failure_reason)


def write_jsonl(items: list[LabelledTrajectory], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for item in items:
            out.write(item.model_dump_json() + "\n")
