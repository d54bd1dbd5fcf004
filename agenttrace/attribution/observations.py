"""Tool output that a text-only log writes into an agent's message.

Spans keep a tool's result apart from the agent's words; a text-only log (Who&When, a chat transcript) often
does not: some frameworks print what their tools observed as part of, or as the whole of, an agent's message.
That part is an input of the run (what the environment answered), not something the agent said, so a number
in it is not one the agent introduced. The conventions below are the frameworks' own output formats, not the
wording of any data set:

* AutoGen / AG2 code executor: its whole reply is the execution's report ("exitcode: 1 (execution failed)
  ..."), or its stock reply when a message holds no code to run;
* AutoGen's text browser (WebSurfer agents, FileSurfer): the page state it prints, "Address: ..." followed by
  "Title: ..." or "Viewport position: ..." (after "You previously visited this page ..." on a return), then
  the page;
* Magentic-One's multimodal WebSurfer: after the action it took ("I clicked 'Products'."), "Here is a
  screenshot of ..." followed by the page's metadata and OCR text; in "I typed 'X' into 'Y'.", Y is the name
  the page gives the field (its label, "0 characters out of 2000"), which the framework writes in, so
  only "I typed 'X'" is the agent's.

A warning that Python's ``warnings`` module printed into the log while the agent ran ("/path/to/client.py:216:
UserWarning: ... may be incorrect." and the source line it quotes) is neither: it is the runtime's note about
its own code, so it is left out of both. A traceback the runtime printed when a call under the agent failed
("Traceback (most recent call last):", its indented frames, then the exception) is what the environment
answered, like a tool's output: its numbers (an HTTP status, line numbers) are not the agent's, nor are the
indented lines printed right under its exception (the rest of the message, a source line). So are the
parts Python and ``logging`` print with it: the lines that chain one traceback to the next ("The above exception
was the direct cause of the following exception:") and the error a logger wrote just before the traceback it
logged ("Error processing publish message", autogen_core's ``logger.error(..., exc_info=True)``). A warning's
source line printed apart from its header, as interleaved output puts it, is the warning's too. The status
lines AutoGen's benchmark harness (agbench's run.sh) echoes around a run ("SCENARIO.PY COMPLETE !#!#") are
the harness's, not the agent's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import TypeVar

_EXECUTOR = (r"exitcode: -?\d+ \(execution (?:succeeded|failed)\)"
             r"|There is no code from the last \d+ messages? for me to execute")
_EXECUTION = re.compile(rf"\s*(?:{_EXECUTOR})")
_STARTS = re.compile(
    rf"^\s*(?:{_EXECUTOR})"
    r"|^Address: \S+[ \t]*\n(?:You previously visited this page [^\n]*\n)?(?:Title|Viewport position): "
    r"|^Here is a screenshot of ",
    re.MULTILINE,
)
_WARNING = re.compile(r"^[^\n]*\.py:\d+: [A-Z]\w*Warning: [^\n]*(?:\n(  [^\n]*))?\n?", re.MULTILINE)  # 1: source
_LOGGED = r"(?:(?:Error|Exception|Unhandled exception|Uncaught exception)\b[^\n]*\n)?"  # a log record's message
# the frames, the exception's line, and the indented lines printed right under it (the rest of its message, or a
# warning's source line whose header went to another stream)
_TRACEBACK = re.compile(rf"^{_LOGGED}Traceback \(most recent call last\):\n(?:[ \t][^\n]*\n)+[^\s][^\n]*"
                        r"(?:\n[ \t]+\S[^\n]*)*\n?", re.MULTILINE)
_CHAINED = re.compile(r"^\n*(?:The above exception was the direct cause of the following exception:"
                      r"|During handling of the above exception, another exception occurred:)\n*$\n?", re.MULTILINE)
_HARNESS = re.compile(r"^[^\n]* !#!#[ \t]*$\n?", re.MULTILINE)
_FIELD = re.compile(r"\AI (?:typed|input) '.*?'( into '.*'\.?)\s*\Z", re.DOTALL)  # group 1: the page's field


READ_CACHE = 512  # texts remembered: more than the steps of a long run, so each pass over a run finds them
CACHED_CHARS = 10_000  # the longest text remembered (99.9% of the dev logs' steps are shorter); longer ones are read anew


Read = TypeVar("Read")


def remembered(read: Callable[[str], Read]) -> Callable[[str], Read]:
    """``read`` (a function of one text) remembering its answers for the last READ_CACHE texts of up to CACHED_CHARS
    characters, so that the memory it holds stays bounded: each reading of a step (its actions, its results, its
    echoes, a quote of it) asks again."""
    cached = lru_cache(maxsize=READ_CACHE)(read)

    @wraps(read)
    def reading(text: str) -> Read:
        return cached(text) if len(text) <= CACHED_CHARS else read(text)
    reading.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return reading


@remembered
def split(text: str) -> tuple[str, str]:
    """``text`` as (the agent's own words, the tool output printed after them, and any traceback in them); the
    second is empty when the text follows none of the conventions; runtime warnings and harness lines are in
    neither. Remembered (:func:`remembered`)."""
    sources = {m.group(1) for m in _WARNING.finditer(text) if m.group(1)}
    text = _HARNESS.sub("", _WARNING.sub("", text))
    if sources:  # the same source line printed again, apart from its header
        text = "".join(line for line in text.splitlines(keepends=True) if line.rstrip("\n") not in sources)
    crashes = [m.group(0).rstrip("\n") for m in _TRACEBACK.finditer(text)]
    if crashes:
        text = _CHAINED.sub("", _TRACEBACK.sub("", text))
    own, printed = _printed_after(text)
    return own, "\n".join(p for p in (printed, *crashes) if p)


def _printed_after(text: str) -> tuple[str, str]:
    m = _STARTS.search(text)
    own, printed = (text, "") if m is None else (text[:m.start()].rstrip(), text[m.start():])
    if (field := _FIELD.match(own)) is not None:
        return own[:field.start(1)], own[field.start(1):].strip() + ("\n" + printed if printed else "")
    return own, printed


def is_execution_report(text: str) -> bool:
    """Whether the whole of ``text`` is a code executor's report: the executor runs what it is given and
    decides nothing."""
    return _EXECUTION.match(text) is not None
