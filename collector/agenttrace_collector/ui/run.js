// One run: its facts, the verdict (candidates, confidence, uncertain / pending / failed), the review, and the
// step trajectory beside the span waterfall; clicking a step or a span shows the span's detail.
import { block, cost, duration, el, getJSON, outcome, pct, runDuration, structured, tokens, when } from "./dom.js";
import { reviewForm, reviewShown } from "./review.js";
import { spanDetail, waterfall } from "./spans.js";

function toolCall(call) {
  return el("li", { class: "tool-call" },
    el("code", { class: "tool-name" }, call.name), call.id ? ` (${call.id})` : "",
    el("div", {}, "arguments:", structured(call.arguments, "tool-arguments")),
    call.result !== null && call.result !== undefined
      ? el("div", {}, "result:", structured(call.result, "tool-result")) : null,
    call.error ? el("div", { class: "error tool-error" }, "error: ", call.error) : null);
}

function candidates(v) {
  if (!v.candidates || !v.candidates.length) return null;
  return el("table", { class: "candidates" },
    el("thead", {}, el("tr", {}, ["Agent", "Step", "Probability"].map((h) => el("th", {}, h)))),
    el("tbody", {}, v.candidates.map((c) => el("tr", { class: "candidate" },
      el("td", {}, c.agent), el("td", {}, c.step), el("td", {}, pct(c.probability))))));
}

export function verdictBox(v) {
  return el("div", { class: `verdict${v.uncertain ? " verdict-uncertain" : ""}` },
    el("strong", {}, "Decisive step"), " - blamed on ", el("strong", { class: "verdict-agent" }, v.agent ?? "?"),
    ` at step ${v.step ?? "?"} by `, el("code", { class: "verdict-attributor" }, v.attributor),
    v.confidence !== null && v.confidence !== undefined
      ? el("span", { class: "verdict-confidence" }, ` confidence ${pct(v.confidence)}`) : "",
    v.uncertain ? el("span", { class: "tag tag-uncertain" }, "uncertain") : "",
    el("div", { class: "verdict-reason" }, v.reason),
    v.advice ? el("div", { class: "verdict-advice" }, el("strong", {}, "Instead: "), v.advice) : null,
    candidates(v),
    v.opinions && v.opinions.length ? el("details", {}, el("summary", {}, `${v.opinions.length} opinion(s)`),
      el("ul", {}, v.opinions.map((o) => el("li", {}, el("code", {}, o.attributor),
        `: ${o.agent ?? "?"} @ step ${o.step ?? "?"}`, o.confidence != null ? ` (${pct(o.confidence)})` : "")))) : null);
}

function jobState(job) {
  if (!job || job.state === "done") return el("p", { class: "verdict-state" }, "No verdict for this run.");
  if (job.state === "failed") {
    return el("p", { class: "verdict-state error" }, `Attribution failed after ${job.attempts} attempt(s): `,
      job.last_error || "");
  }
  return el("p", { class: "verdict-state pending" }, `Verdict pending (${job.state}, attempt ${job.attempts}).`);
}

function step(s, verdict, spansById, select) {
  const decisive = verdict && verdict.step === s.index;
  const span = s.span_id ? spansById.get(s.span_id) : null;
  return el("li", { class: decisive ? "step decisive" : "step", "data-index": s.index, "data-agent": s.agent },
    el("div", { class: "step-head" }, `#${s.index} `, el("span", { class: "step-agent" }, s.agent),
      s.role && s.role !== "assistant" ? ` (${s.role})` : "",
      s.start_time && s.end_time ? el("small", { class: "step-duration" }, "  ", duration(s.end_time - s.start_time)) : null,
      span && span.model ? el("small", { class: "step-model" }, "  ", span.model) : null,
      span && (span.input_tokens || span.output_tokens)
        ? el("small", { class: "step-tokens" }, "  ", tokens(span.input_tokens, span.output_tokens), " ", cost(span.cost)) : null,
      span ? [" ", el("button", { type: "button", class: "show-span", onclick: () => select(s.span_id) }, "span")] : null),
    decisive ? verdictBox(verdict) : null,
    s.input ? el("details", {}, el("summary", {}, "input"), block(s.input, "step-input")) : null,
    s.content ? block(s.content, "step-content") : null,
    s.tool_calls.length ? el("ul", { class: "tools" }, s.tool_calls.map(toolCall)) : null,
    s.transfer_to ? el("div", { class: "handoff" }, "→ hands off to ", el("strong", {}, s.transfer_to)) : null,
    s.error ? el("div", { class: "error step-error" }, "error: ", s.error) : null);
}

export async function showRun(runId, rerender) {
  const [{ trajectory: t, attributions, job, usage, review }, spans] = await Promise.all([
    getJSON(`/runs/${encodeURIComponent(runId)}`), getJSON(`/runs/${encodeURIComponent(runId)}/spans`)]);
  const verdict = attributions.length ? attributions[attributions.length - 1] : null;
  const spansById = new Map(spans.map((s) => [s.span_id, s]));
  const detail = el("div", { id: "span-detail" }, el("p", { class: "muted" }, "Select a span or a step's span."));
  const select = (spanId) => {
    const s = spansById.get(spanId);
    if (!s) return;
    document.querySelectorAll(".span-row.selected").forEach((r) => r.classList.remove("selected"));
    document.querySelector(`.span-row[data-span-id="${CSS.escape(spanId)}"]`)?.classList.add("selected");
    detail.replaceChildren(spanDetail(s));
  };
  // the declared team, agents that never acted included: "lead; pricing: get_price(product, region)"
  const team = (t.team || []).map((m) => m.tools.length
    ? `${m.name}: ${m.tools.map((x) => `${x.name}(${x.parameters.join(", ")})`).join(", ")}` : m.name).join("; ");
  const facts = [
    ["Run", t.run_id], ["Name", t.name], ["Service", t.service], ["Outcome", outcome(t.outcome)],
    ["Termination", t.termination], ["Task", t.task], ["Team", team], ["Expected", t.expected], ["Answer", t.answer],
    ["Failure reason", t.failure_reason], ["Started", when(t.start_time)], ["Duration", runDuration(t)],
    ["Tokens", tokens(usage.input_tokens, usage.output_tokens)], ["Cost", cost(usage.cost)],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  const failed = t.outcome === "failure";
  return [
    el("p", {}, el("a", { href: "#/runs" }, "← all runs"),
      failed ? [" · ", el("a", { href: `#/compare/${encodeURIComponent(t.run_id)}`, id: "compare-link" },
        "compare with a successful run")] : ""),
    el("h2", {}, `Run ${t.run_id}`),
    el("dl", { class: "facts", id: "run-facts" },
      facts.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)])),
    el("section", { id: "verdict-panel" },
      verdict ? verdictBox(verdict) : failed ? jobState(job) : null,
      reviewShown(review),
      failed && t.steps.length ? reviewForm(t, verdict, rerender) : null),
    el("div", { class: "run-columns" },
      el("section", { class: "trajectory" }, el("h3", {}, `Trajectory: ${t.steps.length} step(s)`),
        el("ol", { class: "steps", id: "steps" }, t.steps.map((s) => step(s, verdict, spansById, select)))),
      el("section", { class: "timeline" }, el("h3", {}, "Spans"), waterfall(spans, select), detail)),
  ];
}
