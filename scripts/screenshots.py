"""Screenshots of each view of the collector's web UI, for the README: docs/screenshots/*.png.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts a collector on loopback (SQLite in a temporary folder, cpu attributor) and sends it the demo's runs
(agenttrace/demo/team.py): the research team with its seeded error (a failed run and its verdict), the lesson
the verdict teaches, the same task again (a successful run to compare with), and a fresh team repeating the
error (a run reviewed through the UI's form). Then headless Chromium (Debian's, scripts/chromium.sh, as the UI
tests use) takes 1280x800 PNGs (the run view 1280x1040) of the runs list, a run, failure modes, compare, review
and lessons.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.browser: the same Chromium and view helpers as the UI tests

import agenttrace  # noqa: E402
from agenttrace.demo.team import ResearchTeam  # noqa: E402
from agenttrace.lessons import lesson_for  # noqa: E402
from agenttrace.local_collector import LocalCollector  # noqa: E402
from tests.browser import chromium, open_view  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}
RUN_VIEWPORT = {"width": 1280, "height": 1040}  # the waterfall, the span's detail and the decisive step at once
SEEDED_ERROR_AGENT = "Calculator"  # ResearchTeam(seed_error=True): the Calculator misreads 48 as 46
REVIEW_NOTE = "Right: the Calculator used 46 boxes per shelf where the Researcher found 48."


def demo_runs(collector: LocalCollector) -> tuple[str, str, str]:
    """The demo's loop (failed run, verdict, lesson, successful run) and a fresh team's failed run:
    ``(failed, succeeded, to_review)`` run ids, each assembled and, when failed, judged."""
    agenttrace.instrument(endpoint=collector.endpoint, service_name="demo-research-team", frameworks=[])
    try:
        team = ResearchTeam(seed_error=True)
        failed = team.solve()
        agenttrace.flush()
        trajectory, verdicts = collector.wait_run(failed.run_id, verdict=True)
        lesson = lesson_for(verdicts[-1], trajectory)
        if lesson is None:
            raise RuntimeError(f"the cpu attributor did not decide on run {failed.run_id}")
        team.learn(lesson.agent, lesson.text)
        succeeded = team.solve()
        to_review = ResearchTeam(seed_error=True).solve()
        agenttrace.flush()
    finally:
        agenttrace.uninstrument()
    collector.wait_run(succeeded.run_id)
    _, verdicts = collector.wait_run(to_review.run_id, verdict=True)
    if verdicts[-1].agent != SEEDED_ERROR_AGENT:  # the review confirms the verdict: it must be right
        raise RuntimeError(f"run {to_review.run_id} blamed on {verdicts[-1].agent}, not {SEEDED_ERROR_AGENT}")
    return failed.run_id, succeeded.run_id, to_review.run_id


def shoot(page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KB")
    return path


def screenshots(ui: str, runs: tuple[str, str, str], out: Path) -> None:
    failed, _, to_review = runs
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        open_view(page, f"{ui}#/runs/{to_review}", f"/runs/{to_review}")
        page.fill("#review-note", REVIEW_NOTE)
        page.click("#review-confirm")
        page.wait_for_selector("#review-state")
        shoot(page, out, "review")

        open_view(page, f"{ui}#/runs", "/runs")
        shoot(page, out, "runs")

        open_view(page, f"{ui}#/runs/{failed}", f"/runs/{failed}")
        page.click('li.span-row[data-kind="tool"]:has-text("calculate")')  # the decisive step's tool call
        page.set_viewport_size(RUN_VIEWPORT)
        page.evaluate("document.querySelector('.run-columns').scrollIntoView()")
        shoot(page, out, "run")
        page.set_viewport_size(VIEWPORT)

        open_view(page, f"{ui}#/failures", "/failures")
        shoot(page, out, "failure-modes")

        open_view(page, f"{ui}#/compare/{failed}", f"/compare/{failed}")
        shoot(page, out, "compare")

        open_view(page, f"{ui}#/lessons", "/lessons")
        shoot(page, out, "lessons")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agenttrace-screenshots-") as tmp:
        workdir = Path(tmp)
        with LocalCollector(workdir / "agenttrace.db", attributor="cpu", log_file=workdir / "collector.log",
                            extra_args=("--settle", "0.2")) as collector:
            runs = demo_runs(collector)
            screenshots(f"{collector.endpoint}/ui/", runs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
