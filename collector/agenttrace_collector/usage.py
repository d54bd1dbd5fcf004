"""Tokens and cost of LLM calls, read from the usage attributes of any convention the collector stores.

GenAI (``gen_ai.usage.input_tokens``/``output_tokens``, and the older ``prompt_tokens``/``completion_tokens``),
OpenInference (``llm.token_count.prompt``/``completion``) and OpenLLMetry (the GenAI keys, plus
``llm.usage.total_tokens``). A run's usage sums the innermost spans that report usage: a framework span that
repeats its LLM calls' totals (an agent span, say) is not counted twice.

Cost comes from a price table in US dollars per million tokens, matched by the model's longest known prefix
(``gpt-4o-2024-08-06`` is priced as ``gpt-4o``). The built-in table holds list prices of common models when
this was written; ``AGENTTRACE_PRICES`` names a JSON file ``{"model": {"input": 2.5, "output": 10}}`` that
adds models or overrides them. A model the table does not know has no cost (never a guessed one).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from agenttrace_collector.spanview import SpanView

INPUT_KEYS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_KEYS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion")
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")

# USD per million tokens (input, output): list prices when this table was written; extend with AGENTTRACE_PRICES.
BUILT_IN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60), "gpt-4.1": (2.00, 8.00), "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40), "o3": (2.00, 8.00), "o3-mini": (1.10, 4.40), "o4-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50), "claude-3-5-sonnet": (3.00, 15.00), "claude-3-5-haiku": (0.80, 4.00),
    "claude-sonnet-4": (3.00, 15.00), "claude-opus-4": (15.00, 75.00),
}


class PriceFileError(ValueError):
    pass


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None  # None: no call had a priced model

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost


@cache
def prices() -> dict[str, tuple[float, float]]:
    """The built-in table with the ``AGENTTRACE_PRICES`` file's entries over it."""
    table = dict(BUILT_IN_PRICES)
    path = os.environ.get("AGENTTRACE_PRICES")
    if not path:
        return table
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        for model, price in doc.items():
            table[str(model)] = (float(price["input"]), float(price["output"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise PriceFileError(f"AGENTTRACE_PRICES={path}: expected a JSON object "
                             f'{{"model": {{"input": USD per 1M tokens, "output": ...}}}} ({exc})') from None
    return table


def price_of(model: str | None) -> tuple[float, float] | None:
    if not model:
        return None
    table = prices()
    known = [m for m in table if model == m or model.startswith(m + "-") or model.startswith(m + ":")]
    return table[max(known, key=len)] if known else None


def _first(span: SpanView, keys: tuple[str, ...]):
    return next((span.attrs[k] for k in keys if isinstance(span.attrs.get(k), (int, float, str))), None)


def model_of(span: SpanView) -> str | None:
    model = _first(span, MODEL_KEYS)
    return str(model) if model is not None else None


def span_usage(span: SpanView) -> Usage | None:
    """The span's own usage attributes, priced by its model; None when it reports no tokens."""
    tokens_in, tokens_out = _first(span, INPUT_KEYS), _first(span, OUTPUT_KEYS)
    if not isinstance(tokens_in, (int, float)) and not isinstance(tokens_out, (int, float)):
        return None
    usage = Usage(int(tokens_in or 0), int(tokens_out or 0))
    price = price_of(model_of(span))
    if price is not None:
        usage.cost = (usage.input_tokens * price[0] + usage.output_tokens * price[1]) / 1e6
    return usage


def run_usage(spans: list[SpanView]) -> Usage:
    """A run's usage: the sum over its innermost spans reporting usage (a parent repeating them is skipped)."""
    by_id = {s.span_id: s for s in spans}
    reported = {s.span_id: u for s in spans if (u := span_usage(s)) is not None}
    outer: set[str] = set()  # spans with a reporting span below them
    for span_id in reported:
        seen, parent = {span_id}, by_id[span_id].parent_id
        while parent in by_id and parent not in seen:  # climb, bounded by the cycle guard
            outer.add(parent)
            seen.add(parent)
            parent = by_id[parent].parent_id
    total = Usage()
    for span_id, usage in reported.items():
        if span_id not in outer:
            total.add(usage)
    return total
