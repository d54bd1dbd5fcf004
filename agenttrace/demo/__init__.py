"""``agenttrace demo``: the whole loop on the embedded default, in one process tree on loopback.

collector (child process, SQLite) <- OTLP <- a scripted multi-agent run with a
seeded error -> trajectory -> cpu attributor -> verdict -> on_feedback ->
lesson for the blamed agent -> a second run, which succeeds.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.text import Text

import agenttrace
from agenttrace.demo.team import EXPECTED, ResearchTeam
from agenttrace.lessons import lesson_for
from agenttrace.local_collector import LocalCollector
from agenttrace.models import Attribution
from agenttrace.cli.render import print_trajectory


def main(console: Console, keep: bool = False) -> int:
    """Runs the loop in a temporary folder (database and collector log), removed afterwards unless ``keep``."""
    workdir = Path(tempfile.mkdtemp(prefix="agenttrace-demo-"))
    try:
        return _loop(console, workdir)
    except (RuntimeError, TimeoutError) as exc:  # the collector did not start, or did not answer in time
        console.print(Text(f"the demo failed: {exc}", style="red"))
        log = workdir / "collector.log"
        if log.exists():
            console.print(Text("the collector's log ends with:\n" + log.read_text(errors="replace")[-3000:]))
        return 1
    finally:
        if keep:
            console.print(Text(f"kept {workdir}"))
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _loop(console: Console, workdir: Path) -> int:
    db = workdir / "agenttrace.db"
    console.rule("[b]agenttrace demo")
    console.print(Text(f"starting the collector (SQLite at {db}) ..."))
    with LocalCollector(db, attributor="cpu", log_file=workdir / "collector.log") as collector:
        console.print(f"collector up at {collector.endpoint}")
        agenttrace.instrument(endpoint=collector.endpoint, service_name="demo-research-team", frameworks=[])
        verdicts: queue.Queue[Attribution] = queue.Queue()
        agenttrace.on_feedback(verdicts.put)
        team = ResearchTeam(seed_error=True)
        try:
            console.rule("run 1: with a seeded error in one agent")
            run = team.solve()
            agenttrace.flush()
            console.print(Text(f"answer: {run.answer} (expected {EXPECTED})"))
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
            console.rule(Text(f"feedback delivered to {lesson.agent}"))
            console.print(lesson.text, markup=False)
            team.learn(lesson.agent, lesson.text)

            console.rule("run 2: same task, with the lesson")
            run = team.solve()
            agenttrace.flush()
            second, _ = collector.wait_run(run.run_id)
            console.print(Text.assemble(f"answer: {run.answer} -> the collector judged the run: ",
                                        (second.outcome.value, "bold")))
            ok = first.outcome.value == "failure" and second.outcome.value == "success"
            console.rule("[green]the loop closed: failure -> verdict -> lesson -> success" if ok
                         else "[red]the second run did not succeed")
            return 0 if ok else 1
        finally:
            agenttrace.uninstrument()
