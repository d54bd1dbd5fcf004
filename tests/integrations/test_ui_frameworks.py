"""The web UI on runs made by real framework integrations, in headless Chromium: a LangGraph supervisor
(langgraph-supervisor, ChatOpenAI) and an OpenAI Agents SDK handoff, both against the scripted LLM server.
A run's page shows its agents step by step, an LLM call's model and messages, a tool call's arguments and
result, and the span waterfall with every span the collector stored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("agents")

from agents import Runner  # noqa: E402
from agents.tracing import set_trace_processors  # noqa: E402
from langchain_core.messages import HumanMessage  # noqa: E402

import agenttrace  # noqa: E402
from agenttrace.testing.scripted_llm import ScriptedLLM  # noqa: E402
from tests.browser import assert_nothing_injected, browser, open_view, page  # noqa: E402, F401 (fixtures)
from tests.conftest import flush  # noqa: E402
from tests.integrations.test_langgraph import build_supervisor, supervisor_script  # noqa: E402
from tests.integrations.test_openai_agents import build_handoff_agents, handoff_script  # noqa: E402


def open_run(page, collector, run_id: str) -> list[dict]:
    """Opens the run's page once the collector has assembled it; the spans the collector stored for it."""
    collector.wait_run(run_id)
    spans = collector.get(f"/api/v1/runs/{run_id}/spans").json()
    open_view(page, f"{collector.endpoint}/ui/#/runs/{run_id}", f"/runs/{run_id}")
    return spans


def assert_waterfall_shows(page, spans: list[dict], kinds: set[str]) -> None:
    """A row per stored span, with its duration and bar, and among them spans of each of ``kinds``."""
    rows = page.locator("li.span-row")
    shown = rows.evaluate_all("rs => rs.map(r => r.dataset.kind)")
    assert sorted(shown) == sorted(s["kind"] for s in spans) and kinds <= set(shown)
    assert page.locator(".waterfall-head").inner_text().startswith(f"{len(spans)} spans")
    assert all(d.endswith(("ms", " s")) for d in page.locator(".span-duration").all_inner_texts())
    assert rows.locator(".bar").count() == len(spans)


def show_span(page, span: dict):
    """Clicks the span's row in the waterfall; the span's detail."""
    page.click(f'li.span-row[data-span-id="{span["span_id"]}"]')
    detail = page.locator(f'#span-detail .span-detail[data-span-id="{span["span_id"]}"]')
    detail.wait_for()
    return detail


def first(spans: list[dict], kind: str, **fields) -> dict:
    return next(s for s in spans if s["kind"] == kind and all(s.get(k) == v for k, v in fields.items()))


def test_a_langgraph_supervisor_run_in_the_ui(instrumented, collector, page):
    instrumented("langchain")
    with ScriptedLLM(supervisor_script) as llm:
        graph = build_supervisor(llm)
        with agenttrace.run("ui-supervisor", task="research #21") as run:
            out = graph.invoke({"messages": [HumanMessage("research #21")]})
            run.succeed(out["messages"][-1].content)
    flush()
    spans = open_run(page, collector, run.run_id)

    steps = page.locator("li.step")
    assert steps.locator(".step-agent").all_inner_texts() == ["supervisor", "researcher", "researcher", "supervisor"]
    assert page.locator(".handoff").all_inner_texts() == ["→ hands off to researcher"]
    research = steps.nth(1)
    assert research.locator(".tool-name").all_inner_texts() == ["search"]
    assert '"query": "topic 21"' in research.locator(".tool-arguments").inner_text()
    assert research.locator(".tool-result").inner_text() == "results for topic 21"
    assert steps.nth(3).locator("pre.step-content").inner_text() == "final answer 21"
    assert page.locator('dd[data-field="Answer"]').inner_text() == "final answer 21"
    assert_waterfall_shows(page, spans, {"run", "agent", "llm", "tool"})

    detail = show_span(page, first(spans, "llm", agent="researcher"))
    assert detail.locator('dd[data-field="Model"]').inner_text() == "scripted-model"
    assert detail.locator('dd[data-field="Agent"]').inner_text() == "researcher"
    assert detail.locator(".input-messages .role").all_inner_texts()[:2] == ["SYSTEM", "USER"]
    assert detail.locator(".input-messages pre.message-text").all_inner_texts()[:2] == [
        "You are the researcher.", "research #21"]
    called = detail.locator(".output-messages .part-tool-call")
    assert called.locator(".tool-name").inner_text() == "search"
    assert '"query": "topic 21"' in called.locator(".tool-arguments").inner_text()

    detail = show_span(page, first(spans, "tool", tool_name="search"))
    assert '"query": "topic 21"' in detail.locator(".tool-arguments").inner_text()
    assert detail.locator(".tool-result").inner_text() == "results for topic 21"
    assert_nothing_injected(page)


def handoff_run() -> str:
    with ScriptedLLM(handoff_script) as llm:
        with agenttrace.run("ui-billing", task="status of invoice #4") as run:
            result = Runner.run_sync(build_handoff_agents(llm), "status of invoice #4")
            run.succeed(result.final_output)
    return run.run_id


def test_an_openai_agents_handoff_run_in_the_ui(instrumented, collector, page):
    set_trace_processors([])  # no export to OpenAI's backend from tests (no network)
    instrumented("openai_agents")
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API keeps an event loop running in this thread
        run_id = thread.submit(handoff_run).result()
    flush()
    spans = open_run(page, collector, run_id)

    steps = page.locator("li.step")
    assert steps.locator(".step-agent").all_inner_texts() == ["triage", "Billing agent", "Billing agent",
                                                               "Billing agent"]
    assert page.locator(".handoff").all_inner_texts() == ["→ hands off to Billing agent"]
    assert steps.nth(1).locator(".tool-name").all_inner_texts() == ["lookup_invoice"]
    assert '"invoice_id": "INV-4"' in steps.nth(1).locator(".tool-arguments").inner_text()
    assert steps.nth(1).locator(".tool-result").inner_text() == "invoice INV-4: 120 EUR, paid"
    assert "refunds are disabled for INV-4" in steps.nth(2).locator(".tool-error").inner_text()
    assert_waterfall_shows(page, spans, {"run", "agent", "llm", "tool", "handoff"})
    assert page.locator("li.span-row.has-error").count() == 1  # the refund

    detail = show_span(page, first(spans, "llm", agent="Billing agent"))
    assert detail.locator('dd[data-field="Model"]').inner_text() == "scripted-model"
    assert detail.locator(".input-messages .role").all_inner_texts()[:2] == ["SYSTEM", "USER"]
    assert detail.locator(".input-messages pre.message-text").all_inner_texts()[:2] == [
        "You are billing.", "status of invoice #4"]
    assert detail.locator(".output-messages .part-tool-call .tool-name").inner_text() == "lookup_invoice"

    detail = show_span(page, first(spans, "tool", tool_name="refund"))
    assert '"invoice_id": "INV-4"' in detail.locator(".tool-arguments").inner_text()
    assert "refunds are disabled for INV-4" in detail.locator(".span-error").inner_text()
    assert_nothing_injected(page)
