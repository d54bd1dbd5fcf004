"""Does the team a framework's integration declares do what the app's declaration does for the ``cpu`` verdict?

    .venv/bin/python bench/integration_teams.py [--runs build/suite-check] [--out bench/integration_teams.md]

Each framework's runs are made twice from the same seed (the same episodes, errors and model replies), once with
the app declaring the team (``agenttrace.run(team=...)``) and once without (``--no-team``: the run carries the
team the integration declares, or none), e.g. for each framework of a nox environment::

    .nox/suite-<env>/bin/agenttrace suite generate --framework F --n 30 --seed 777 --out build/suite-check/F-team.jsonl
    .nox/suite-<env>/bin/agenttrace suite generate --framework F --n 30 --seed 777 --no-team --out build/suite-check/F-noteam.jsonl

The seed is not the one the shipped model was fitted on (20250901), so these are fresh runs. The shipped model
attributes every run without the ground truth; the table gives, per framework, exact agent / step accuracy with
the app's team, with the integration's, and with no team at all (the app's runs with the team removed, the
floor), and how many verdicts the integration's team leaves as the app's team gives them. Wrong hand-offs, the
kind only a team shows, are counted on their own. Accuracy is over every run, the environment's faults included
(a service down: no agent's fault; the verdict is right when it names the environment at the failed call).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agenttrace.attribution.cpu import CpuAttributor  # noqa: E402
from agenttrace.models import LabelledTrajectory  # noqa: E402

HANDOFF, ENVIRONMENT_FAULT = "wrong_handoff", "environment_fault"


def _episode(it: LabelledTrajectory) -> str:
    """The episode a run was made from: the same in its -team and -noteam files."""
    return it.tags["seed"].rsplit(":", 1)[0]


def _runs(path: Path) -> list[LabelledTrajectory]:
    return [LabelledTrajectory.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _verdicts(att: CpuAttributor, items: list[LabelledTrajectory], *, drop_team: bool = False) -> dict[str, tuple]:
    out = {}
    for it in items:
        update = {"expected": None, **({"team": []} if drop_team else {})}
        a = att.attribute(it.trajectory.model_copy(update=update))
        out[_episode(it)] = (a.agent, a.step, it.label.agent, it.label.step, it.tags["error_kind"])
    return out


def _accuracy(verdicts: list[tuple]) -> str:
    if not verdicts:
        return "-"
    agent = sum(v[0] == v[2] for v in verdicts) / len(verdicts)
    step = sum((v[0], v[1]) == (v[2], v[3]) for v in verdicts) / len(verdicts)
    return f"{agent:.3f} / {step:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default=str(ROOT / "build" / "suite-check"), help="folder of F-team.jsonl, F-noteam.jsonl")
    ap.add_argument("--out", default=str(ROOT / "bench" / "integration_teams.md"))
    args = ap.parse_args()
    runs = Path(args.runs)
    att = CpuAttributor()
    lines = ["| framework | runs (both ways) | integration declares a team in | agent / step, app's team | "
             "agent / step, integration's team | agent / step, no team | same verdict | environment faults | wrong hand-offs | "
             "their agent / step: app's team | integration's | none |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for team_file in sorted(runs.glob("*-team.jsonl")):
        framework = team_file.name.removesuffix("-team.jsonl")
        app_items = _runs(team_file)
        own_items = _runs(runs / f"{framework}-noteam.jsonl")
        app, own, none = _verdicts(att, app_items), _verdicts(att, own_items), _verdicts(att, app_items, drop_team=True)
        both = sorted(set(app) & set(own))
        declared = sum(bool(it.trajectory.team) for it in own_items if _episode(it) in both)
        same = sum(app[k][:2] == own[k][:2] for k in both)
        handoffs = [k for k in both if app[k][4] == HANDOFF]
        lines.append(f"| {framework} | {len(both)} | {declared} | {_accuracy([app[k] for k in both])} | "
                     f"{_accuracy([own[k] for k in both])} | {_accuracy([none[k] for k in both])} | {same} | "
                     f"{sum(app[k][4] == ENVIRONMENT_FAULT for k in both)} | {len(handoffs)} | "
                     f"{_accuracy([app[k] for k in handoffs])} | {_accuracy([own[k] for k in handoffs])} | "
                     f"{_accuracy([none[k] for k in handoffs])} |")
        print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text("# The integration's team against the app's (bench/integration_teams.py)\n\n"
                              + (__doc__ or "").split("\n\n", 1)[1] + "\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
