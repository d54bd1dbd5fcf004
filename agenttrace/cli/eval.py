"""`agenttrace attribute` and `agenttrace eval`: attribute one file, or score an attributor on data sets."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agenttrace.attribution.base import AttributorError, available, get_attributor
from agenttrace.cli.export import fetch_reviewed
from agenttrace.data.baselines import Comparison, compare
from agenttrace.data.datasets import DatasetError, iter_paths, load_any
from agenttrace.data.evaluate import MODE_TITLES, WITH_G, WITHOUT_G, EvalError, prepare, run_eval
from agenttrace.logs import get_logger
from agenttrace.data.scoring import score

log = get_logger("agenttrace.cli.eval")


def _options(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--attributor-option")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _build(name: str, pairs: tuple[str, ...]):
    try:
        return get_attributor(name, **_options(pairs))
    except AttributorError as exc:
        raise click.ClickException(str(exc)) from None


@click.command(
    "attribute",
    help="""Attribute one failed run: print which agent, at which step, caused it and why.

FILE is a Who&When JSON file (an object with "history", "question", ...), a TracerTraj .jsonl file
(every line is attributed), or a trajectory JSON as written by Trajectory.model_dump_json().
When the file carries a label (mistake_agent / mistake_step) it is shown next to the verdict.

\b
Examples:
  agenttrace attribute whowhen/Hand-Crafted/1.json
  agenttrace attribute run.json --attributor cpu --json
""",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--attributor", "-a", default="cpu", show_default=True, envvar="AGENTTRACE_ATTRIBUTOR",
              help=f"Which attributor to use ({', '.join(available())}).")
@click.option("--attributor-option", "-o", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the attributor; repeatable (values are parsed as JSON when they can be).")
@click.option("--without-ground-truth", is_flag=True,
              help="Hide the task's ground-truth answer from the attributor.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict(s) as JSON instead of text.")
def attribute_command(file, attributor, attributor_option, without_ground_truth, as_json) -> None:
    try:
        items = load_any(file)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    att = _build(attributor, attributor_option)
    mode = WITHOUT_G if without_ground_truth else WITH_G
    console = Console()
    verdicts = []
    for item in items:
        t0 = time.perf_counter()
        a = att.attribute(prepare(item, mode))
        log.debug("attributed", item=item.id, seconds=round(time.perf_counter() - t0, 4))
        verdict = {"id": item.id, **a.model_dump(exclude={"seq", "created_at"})}
        if item.label:
            s = score(a.agent, a.step, item.label)
            verdict["label"] = item.label.model_dump()
            verdict["score"] = s.as_dict()
        verdicts.append(verdict)
        if as_json:
            continue
        console.print(Text.assemble((item.id, "bold"),
                                    f"  ({len(item.trajectory.steps)} steps, attributor {attributor})"))
        console.print(Text.assemble("  agent: ", (str(a.agent), "bold"), "   step: ", (str(a.step), "bold"),
                                    f"   confidence: {a.confidence if a.confidence is not None else '-'}"))
        console.print(f"  reason: {a.reason}", markup=False, highlight=False)
        if a.advice:
            console.print(f"  instead: {a.advice}", markup=False, highlight=False)
        if item.label:
            ok = "right" if verdict["score"]["agent_exact"] and verdict["score"]["step_exact"] else (
                "agent right, step wrong" if verdict["score"]["agent_exact"] else "wrong")
            console.print(f"  label: agent {item.label.agent}, step {item.label.step} -> {ok}", markup=False,
                          highlight=False)
    if as_json:
        click.echo(json.dumps(verdicts[0] if len(verdicts) == 1 else verdicts, indent=2, ensure_ascii=False))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _count(n: int | None, rate: float | None) -> str:
    """How many verdicts, and their step accuracy: "-" when the attributor does not flag its verdicts."""
    return "-" if n is None else f"{n} ({'-' if rate is None else _pct(rate)})"


def print_tables(console: Console, boards: dict, attributor: str) -> None:
    subsets = sorted({s for b in boards.values() for s in b.subsets})
    if len(subsets) > 1:
        subsets.append("all")
    for subset in subsets:
        table = Table(title=Text(f"{subset} - attributor {attributor}"), title_justify="left")
        table.add_column("mode")
        table.add_column("n", justify="right")
        table.add_column("agent acc\nWho&When", justify="right")
        table.add_column("step acc\nWho&When", justify="right")
        table.add_column("agent acc\nexact", justify="right")
        table.add_column("step acc\nexact", justify="right")
        table.add_column("mean\nreward", justify="right")
        table.add_column("ECE", justify="right")
        table.add_column("confident", justify="right")
        table.add_column("uncertain", justify="right")
        for mode, board in boards.items():
            summ = board.overall().summary() if subset == "all" else (
                board.subsets[subset].summary() if subset in board.subsets else None)
            if not summ:
                continue
            table.add_row(MODE_TITLES.get(mode, mode), str(summ["n"]), _pct(summ["agent_acc_whowhen"]),
                          _pct(summ["step_acc_whowhen"]), _pct(summ["agent_acc_exact"]),
                          _pct(summ["step_acc_exact"]), f"{summ['mean_reward']:.3f}",
                          "-" if summ["ece"] is None else f"{summ['ece']:.3f}",
                          _count(summ["confident"], summ["step_acc_exact_confident"]),
                          _count(summ["uncertain"], summ["step_acc_exact_uncertain"]))
        console.print(table)
    console.print(LEGEND, soft_wrap=True, highlight=False)


def comparisons(items: list, predictions: list[dict]) -> dict[str, dict[str, Comparison]]:
    """Per mode and subset (and "all" when there are several): the attributor beside every trivial baseline,
    on the labelled runs it has a prediction for."""
    by_id = {it.id: it for it in items if it.label}
    out: dict[str, dict[str, Comparison]] = {}
    for mode in dict.fromkeys(row["mode"] for row in predictions):
        rows = [row for row in predictions if row["mode"] == mode and row["id"] in by_id]
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(by_id[row["id"]].subset, []).append(row)
        if len(groups) > 1:
            groups["all"] = rows
        out[mode] = {subset: compare([(r["agent"], r["step"]) for r in group], [by_id[r["id"]] for r in group])
                     for subset, group in sorted(groups.items())}
    return out


def print_baselines(console: Console, compared: dict[str, dict[str, Comparison]], attributor: str) -> None:
    for mode, subsets in compared.items():
        for subset, c in subsets.items():
            console.print(f"{subset} - attributor {attributor} ({MODE_TITLES.get(mode, mode)}) beside the trivial "
                          f"baselines, exact match, n={c.n}", markup=False, highlight=False, soft_wrap=True)
            table = Table()
            table.add_column("predictor")
            table.add_column("agent acc\nexact", justify="right")
            table.add_column("step acc\nexact", justify="right")
            table.add_row(Text(attributor, style="bold"), _pct(c.ours[0]), _pct(c.ours[1]))
            for name, (agent, step) in c.baselines.items():
                table.add_row(Text(name), _pct(agent), _pct(step))
            console.print(table)
            for m in c.margins:
                console.print(f"  {m.level}: {100 * m.margin:+.1f} points over the strongest baseline ({m.baseline}), "
                              f"95% interval [{100 * m.low:+.1f}, {100 * m.high:+.1f}]", markup=False, highlight=False,
                              soft_wrap=True)
    console.print(BASELINES_LEGEND, soft_wrap=True, highlight=False)


BASELINES_LEGEND = (
    "Baselines read no step's text beyond whether it shows an error: the most frequent agent of the run, its first "
    "agent step, its last step, the first step showing an error (a failed tool call or an error word), and the most frequent labelled agent and step of the scored runs themselves "
    "(oracle: no attributor could know them). A baseline that names an agent is given that agent's first step. "
    "The interval is a paired bootstrap over the runs: a margin whose interval holds 0 could be luck."
)


LEGEND = (
    "Who&When = the Who&When substring scoring of its evaluate.py (agent right if the true name is contained in "
    "the prediction; step right if str(true step) is a substring of str(predicted step), so true 1 matches 12). "
    "exact = exact match scoring. mean reward = AgenTracer multi-granular reward, 0.5*agent + 0.5*exp(-(dt)^2/2). "
    "ECE = expected calibration error of the verdict's stated probability against an exact step hit (10 bins). "
    "confident / uncertain = how many verdicts were not flagged / flagged uncertain, and their exact step accuracy. "
    "with G = the attributor saw the ground-truth answer; without G = it did not."
)


@click.command(
    "eval",
    help="""Score an attributor on labelled failure data sets (Who&When, TracerTraj).

PATH is a Who&When folder of JSON files (e.g. whowhen/Hand-Crafted), a folder of such folders,
a single Who&When .json file, or a TracerTraj .jsonl file; give several to score them together.
A history item's tool calls are read back from OpenAI chat messages (tool_calls, role "tool"
answers), LangChain message dicts (also as langchain_core's dumpd writes them), Anthropic
tool_use / tool_result blocks, OpenAI Agents SDK function_call items, smolagents tool-call /
tool-response messages and memory steps (agent.memory.get_full_steps()), AG2 tool_responses,
a web surfer's "I typed 'X' ..." report and the page after it, ReAct text (Action / Action
Input / Observation lines) and agenttrace export files; anything else is read as the agent's
words.
Each subset gets its own table with agent- and step-level accuracy under two rules - the
Who&When substring rule (as in its evaluate.py: lenient, a true step 1 matches a predicted 12)
and exact match - plus AgenTracer's mean multi-granular reward, and, when the attributor states
a probability and flags uncertain verdicts (cpu does), the expected calibration error and how
many verdicts were confident and uncertain, each with its exact step accuracy.

"with G" shows the attributor the ground-truth answer of the task; "without G" hides it.

--collector URL adds the runs reviewed in that collector's UI (labelled with the reviewer's agent and step;
its token from AGENTTRACE_TOKEN) as the subsets reviewed/<service>.

--baselines puts the attributor beside the trivial baselines on the same runs (the most frequent
agent of the run, the first agent step, the last step, the first step showing an error, and the
most frequent labelled agent and step of the scored runs, which no attributor could know) and
gives its margin over the strongest at agent and at step level with a 95% paired bootstrap
interval: a margin whose interval holds 0 could be luck.

Predictions are written to --out after every item; rerunning with the same --out resumes
and skips items already there (use --limit to compute only a few items per run).

\b
Examples:
  agenttrace eval data/whowhen/Hand-Crafted data/tracertraj/code-dev.jsonl --both
  agenttrace eval data/whowhen --attributor cpu --out cpu.json --limit 10
  agenttrace eval data/whowhen/Algorithm-Generated --without-ground-truth --baselines
  agenttrace eval --collector http://127.0.0.1:4318 --attributor cpu --out reviewed.json
""",
)
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--collector", "collector_url", metavar="URL", help="Also score on this collector's reviewed runs.")
@click.option("--attributor", "-a", default="cpu", show_default=True, envvar="AGENTTRACE_ATTRIBUTOR",
              help=f"Which attributor to score ({', '.join(available())}).")
@click.option("--attributor-option", "-o", multiple=True, metavar="KEY=VALUE",
              help="Option passed to the attributor; repeatable (values are parsed as JSON when they can be).")
@click.option("--with-ground-truth/--without-ground-truth", "with_g", default=True, show_default=True,
              help="Show the attributor the task's ground-truth answer, or hide it.")
@click.option("--both", is_flag=True, help="Run both settings, with and without ground truth.")
@click.option("--out", type=click.Path(dir_okay=False), default="predictions.json", show_default=True,
              help="Per-item predictions (JSON); an existing file is resumed.")
@click.option("--limit", type=int, default=None,
              help="Compute at most this many new predictions, then stop (rerun to continue).")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
@click.option("--baselines", is_flag=True,
              help="Also score the trivial baselines on the same runs and give the attributor's margin over the "
                   "strongest, with a 95% bootstrap interval.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON instead of tables.")
def eval_command(paths, collector_url, attributor, attributor_option, with_g, both, out, limit, no_progress,
                 baselines, as_json) -> None:
    if not paths and not collector_url:
        raise click.UsageError("give data set PATHS, --collector URL, or both")
    try:
        items = iter_paths(paths)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if collector_url:
        items += fetch_reviewed(collector_url.rstrip("/"))
    if not items:
        raise click.ClickException("no items found in " + ", ".join([*paths, *([collector_url] if collector_url else [])]))
    att = _build(attributor, attributor_option)
    modes = [WITH_G, WITHOUT_G] if both else [WITH_G if with_g else WITHOUT_G]
    console = Console()
    log.info("eval_start", items=len(items), attributor=attributor, modes=modes, out=out)
    try:
        result = run_eval(items, att, attributor_name=attributor, modes=modes, out=out, limit=limit,
                          progress=not no_progress and not as_json)
    except EvalError as exc:
        raise click.ClickException(str(exc)) from None
    total = len(items) * len(modes)
    done = len(result.predictions)
    compared = comparisons(items, result.predictions) if baselines else {}
    if as_json:
        report = {"attributor": attributor, "computed": result.computed, "skipped": result.skipped,
                  "done": done, "total": total, "scores": {m: b.summary() for m, b in result.boards.items()}}
        if baselines:
            report["baselines"] = {mode: {subset: c.as_dict() for subset, c in subsets.items()}
                                   for mode, subsets in compared.items()}
        click.echo(json.dumps(report, indent=2))
        return
    console.print(f"computed {result.computed} new prediction(s), reused {result.skipped} from {out}; "
                  f"{done}/{total} done", markup=False, highlight=False)
    if done < total:
        console.print(f"[yellow]partial: {total - done} item(s) left; rerun the same command to resume[/yellow]")
    print_tables(console, result.boards, attributor)
    if baselines:
        print_baselines(console, compared, attributor)
