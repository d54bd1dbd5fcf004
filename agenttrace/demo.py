"""``agenttrace demo``: the whole loop on the embedded default, in one process tree on loopback.

collector (child process, SQLite) <- OTLP <- a scripted multi-agent run with a
seeded error -> trajectory -> cpu attributor -> verdict -> on_feedback ->
lesson for the blamed agent -> a second run, which succeeds.
"""

from __future__ import annotations

import importlib.util
import queue
import sys
import tempfile
from pathlib import Path

from rich.console import Console

import agenttrace
from agenttrace.lessons import lesson_for
from agenttrace.local_collector import LocalCollector
from agenttrace.models import Attribution
from agenttrace.render import print_trajectory

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load_example(name: str):
    path = EXAMPLES / f"{name}.py"
    if not path.exists():
        raise SystemExit(f"the demo needs the examples/ folder of an agenttrace clone; {path} not found")
    spec = importlib.util.spec_from_file_location(f"agenttrace_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(console: Console, keep: bool = False) -> int:
    team_module = _load_example("research_team")
    workdir = Path(tempfile.mkdtemp(prefix="agenttrace-demo-"))
    db = workdir / "agenttrace.db"
    console.rule("[b]agenttrace demo")
    console.print(f"starting the collector (SQLite at {db}) ...")
    with LocalCollector(db, attributor="cpu", log_file=workdir / "collector.log") as collector:
        console.print(f"collector up at {collector.endpoint}")
        agenttrace.instrument(endpoint=collector.endpoint, service_name="demo-research-team", frameworks=[])
        verdicts: queue.Queue[Attribution] = queue.Queue()
        agenttrace.on_feedback(verdicts.put)
        team = team_module.ResearchTeam(seed_error=True)
        try:
            console.rule("run 1: with a seeded error in one agent")
            run = team.solve()
            agenttrace.setup.active().force_flush()
            console.print(f"answer: {run.answer} (expected {team_module.EXPECTED})")
            try:
                verdict = verdicts.get(timeout=60)
            except queue.Empty:
                console.print("[red]no verdict arrived within 60 s[/red]")
                return 1
            first, _ = collector.wait_run(run.run_id)
            print_trajectory(console, first, verdict)

            lesson = lesson_for(verdict, first)
            if lesson is None:
                console.print("[red]the attributor could not decide; nothing to learn[/red]")
                return 1
            console.rule(f"feedback delivered to {lesson.agent}")
            console.print(lesson.text, markup=False)
            team.learn(lesson.agent, lesson.text)

            console.rule("run 2: same task, with the lesson")
            run = team.solve()
            agenttrace.setup.active().force_flush()
            second, _ = collector.wait_run(run.run_id)
            console.print(f"answer: {run.answer} -> the collector judged the run: [b]{second.outcome.value}[/b]")
            ok = first.outcome.value == "failure" and second.outcome.value == "success"
            console.rule("[green]the loop closed: failure -> verdict -> lesson -> success" if ok
                         else "[red]the second run did not succeed")
            return 0 if ok else 1
        finally:
            agenttrace.uninstrument()
            if keep:
                console.print(f"kept {workdir}")
