"""Who first wrote the code a run ends with.

Agents that write code (AG2's experts, MetaGPT's engineer, a coding agent's tool calls) hand it on, run it,
patch it and write it again; the run's last code is what it delivers. A step that first writes a line the
last code still has is where that line, and any fault in it, comes from; later steps that repeat the line
copy it. Code is read from fenced blocks of an agent's own words and from multi-line string arguments of its
tool calls (an escaped ``\\n`` inside a JSON command counts as a line break). Lines too short to tell apart
(``else:``, ``return x``) and the key-value lines of a JSON command are not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenttrace.attribution.flow import action_text, argument_values
from agenttrace.models import Step, Trajectory

_FENCE = re.compile(r"```[\w+-]*\n(.*?)```", re.DOTALL)
_JSON_KEY = re.compile(r'^"[^"]+"\s*:')
_MIN_LINE = 12  # characters of a line worth comparing


@dataclass(frozen=True)
class CodeOrigin:
    """The step ``pos`` is the first to write ``line``, which the run's last code (at ``last``) still has."""

    pos: int
    line: str
    last: int


def code_lines(text: str) -> list[str]:
    """The comparable lines of the code in ``text``, in order, each once: its fenced blocks, escaped line
    breaks read as breaks."""
    out: dict[str, None] = {}
    for block in _FENCE.findall(text):
        for line in block.replace("\\n", "\n").splitlines():
            line = line.strip()
            if len(line) >= _MIN_LINE and any(c.isalpha() for c in line) and not _JSON_KEY.match(line):
                out[line] = None
    return list(out)


def written_code(step: Step) -> list[str]:
    """The code lines a step writes: in its own words and in its tool calls' multi-line arguments."""
    lines = code_lines(action_text(step))
    for call in step.tool_calls:
        lines += [line for _, value in argument_values(call.arguments) if "\n" in value or "\\n" in value
                  for line in code_lines(f"```\n{value}\n```")]
    return list(dict.fromkeys(lines))


def code_origins(trajectory: Trajectory, acting: list[bool]) -> dict[int, CodeOrigin]:
    """For each acting step that first writes a line of the run's last code, the first such line. Code the
    task or an input (a user, a tool's output) showed first is no agent's."""
    written = [written_code(step) for step in trajectory.steps]
    last = max((i for i, lines in enumerate(written) if lines and acting[i]), default=None)
    if last is None:
        return {}
    final = set(written[last])
    seen = set(code_lines(trajectory.task or ""))
    origins: dict[int, CodeOrigin] = {}
    for pos, lines in enumerate(written):
        fresh = next((line for line in lines if line in final and line not in seen), None)
        if fresh is not None and acting[pos]:
            origins[pos] = CodeOrigin(pos, fresh, last)
        seen.update(lines)
    return origins
