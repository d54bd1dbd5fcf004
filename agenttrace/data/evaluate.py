"""The evaluation runner: any attributor over Who&When folders and TracerTraj JSONL, scored two ways.

Predictions are kept in one JSON file (``{"attributor": ..., "predictions": [...]}``) that is rewritten
atomically after every item, so an interrupted run loses at most the item in flight and a rerun with the
same output file skips every item already there (an item is keyed by mode and id).

Modes: ``with_G`` - the attributor sees ``trajectory.expected`` (the ground-truth answer);
``without_G`` - ``expected`` is set to None before attributing.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agenttrace.attribution.base import Attributor, get_attributor
from agenttrace.data.datasets import iter_paths
from agenttrace.logs import get_logger
from agenttrace.models import Label, LabelledTrajectory
from agenttrace.data.scoring import Scoreboard, score

log = get_logger("agenttrace.data.evaluate")

WITH_G = "with_G"
WITHOUT_G = "without_G"
MODE_TITLES = {WITH_G: "with G", WITHOUT_G: "without G"}


class EvalError(Exception):
    """The evaluation cannot go on (e.g. the output file belongs to another attributor)."""


def prediction_key(mode: str, item_id: str) -> str:
    return f"{mode}|{item_id}"


def prepare(item: LabelledTrajectory, mode: str):
    """The trajectory the attributor sees in this mode."""
    if mode == WITHOUT_G:
        return item.trajectory.model_copy(update={"expected": None})
    return item.trajectory


@dataclass
class EvalResult:
    boards: dict[str, Scoreboard] = field(default_factory=dict)  # mode -> scoreboard
    predictions: list[dict[str, Any]] = field(default_factory=list)
    computed: int = 0
    skipped: int = 0


class PredictionStore:
    """The predictions file: loaded on start, rewritten atomically after each new prediction."""

    def __init__(self, path: str | Path | None, attributor: str):
        self.path = Path(path) if path else None
        self.attributor = attributor
        self.rows: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists() and self.path.stat().st_size > 0:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise EvalError(f"{self.path} is not a predictions file ({exc}); move it away or pick another --out") from None
            if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
                raise EvalError(f"{self.path} is not a predictions file; move it away or pick another --out")
            if data.get("attributor") != attributor:
                raise EvalError(
                    f"{self.path} holds predictions of attributor {data.get('attributor')!r}, not {attributor!r}; "
                    "pick another --out to keep them apart"
                )
            for row in data["predictions"]:
                self.rows[row["key"]] = row

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["key"]] = row
        self.flush()

    def flush(self) -> None:
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"attributor": self.attributor, "updated_at": time.time(), "predictions": list(self.rows.values())}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, ensure_ascii=False, indent=1)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def run_eval(
    items: Sequence[LabelledTrajectory],
    attributor: Attributor,
    *,
    attributor_name: str | None = None,
    modes: Iterable[str] = (WITH_G,),
    out: str | Path | None = None,
    limit: int | None = None,
    on_item: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> EvalResult:
    """Attributes every (mode, item) not yet in ``out``, then scores every prediction of these items.

    ``limit`` caps how many new predictions are computed in this call (the rest is left for a rerun).
    """
    name = attributor_name or getattr(attributor, "name", type(attributor).__name__)
    modes = list(modes)
    store = PredictionStore(out, name)
    todo = [(m, it) for m in modes for it in items]
    result = EvalResult()
    pending = [(m, it) for m, it in todo if prediction_key(m, it.id) not in store]
    result.skipped = len(todo) - len(pending)
    if limit is not None:
        pending = pending[: max(limit, 0)]
    if result.skipped:
        log.info("resuming", already_done=result.skipped, to_compute=len(pending), out=str(out))

    def work(advance: Callable[[], None]) -> None:
        for mode, item in pending:
            t0 = time.perf_counter()
            try:
                a = attributor.attribute(prepare(item, mode))
                row = {"agent": a.agent, "step": a.step, "reason": a.reason, "confidence": a.confidence,
                       "uncertain": a.uncertain, "error": None}
            except Exception as exc:  # one bad item must not sink a long run; it scores 0
                log.warning("attribution_failed", item=item.id, mode=mode, error=str(exc))
                row = {"agent": None, "step": None, "reason": "", "confidence": None, "error": str(exc)}
            row.update(
                key=prediction_key(mode, item.id), id=item.id, subset=item.subset, mode=mode,
                seconds=round(time.perf_counter() - t0, 4),
                label=item.label.model_dump() if item.label else None,
            )
            store.add(row)
            result.computed += 1
            if on_item:
                on_item(row)
            advance()

    if progress and pending:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task(f"{name}", total=len(pending))
            work(lambda: bar.advance(task))
    else:
        work(lambda: None)

    wanted = {prediction_key(m, it.id) for m, it in todo}
    for mode in modes:
        result.boards[mode] = Scoreboard()
    for key, row in store.rows.items():
        if key not in wanted:
            continue
        result.predictions.append(row)
        if row.get("label"):
            label = Label.model_validate(row["label"])
            s = score(row.get("agent"), row.get("step"), label, confidence=row.get("confidence"),
                      uncertain=row.get("uncertain"))
            result.boards[row["mode"]].add(row["subset"], s)
    log.info("eval_done", computed=result.computed, skipped=result.skipped, out=str(out) if out else None)
    return result


def eval_paths(
    paths: Sequence[str | Path],
    attributor: str,
    options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> EvalResult:
    """:func:`run_eval` over data set paths with the attributor registered as ``attributor``."""
    items = iter_paths(paths)
    return run_eval(items, get_attributor(attributor, **(options or {})), attributor_name=attributor, **kwargs)
