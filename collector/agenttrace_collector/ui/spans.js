// A run's spans: a waterfall (tree order, bars on the run's time axis) and the detail of the selected span -
// an LLM call's model, messages, tokens and cost; a tool call's arguments and result; errors; attributes.
import { asText, block, cost, duration, el, structured, tokens } from "./dom.js";

// Spans in depth-first tree order, each with its depth; a span whose parent is absent is a root.
export function treeOrder(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  for (const s of spans) {
    const parent = s.parent_id && ids.has(s.parent_id) && s.parent_id !== s.span_id ? s.parent_id : null;
    children.set(parent, [...(children.get(parent) || []), s]);
  }
  const out = [];
  const seen = new Set();
  const visit = (s, depth) => {
    if (seen.has(s.span_id)) return; // a cycle of parent links
    seen.add(s.span_id);
    out.push({ span: s, depth });
    for (const c of children.get(s.span_id) || []) visit(c, depth + 1);
  };
  for (const root of children.get(null) || []) visit(root, 0);
  for (const s of spans) visit(s, 0); // spans only reachable through a cycle
  return out;
}

function part(p) {
  if (p.type === "text" || p.type === "reasoning") {
    return el("div", { class: `part part-${p.type}` }, p.type === "reasoning" ? el("em", {}, "reasoning") : "",
      block(asText(p.content), "message-text"));
  }
  if (p.type === "tool_call") {
    return el("div", { class: "part part-tool-call" }, "calls ", el("code", { class: "tool-name" }, p.name),
      p.id ? ` (${p.id})` : "", structured(p.arguments, "tool-arguments"));
  }
  if (p.type === "tool_call_response") {
    return el("div", { class: "part part-tool-response" }, "result", p.id ? ` of ${p.id}` : "",
      structured(p.response, "tool-result"));
  }
  return el("div", { class: "part" }, block(asText(p), "message-text"));
}

function message(m) {
  const parts = Array.isArray(m.parts) ? m.parts.map(part)
    : [block(asText(m.content !== undefined ? m.content : m), "message-text")];
  return el("li", { class: `message role-${m.role || "unknown"}` }, el("span", { class: "role" }, m.role || "?"), parts);
}

function messages(title, list, cls) {
  if (!list || !list.length) return null;
  return el("section", { class: cls }, el("h4", {}, title), el("ol", { class: "messages" }, list.map(message)));
}

export function spanDetail(s) {
  const facts = [
    ["Kind", s.kind], ["Agent", s.agent], ["Duration", duration(s.end - s.start)], ["Model", s.model],
    ["Tokens", tokens(s.input_tokens, s.output_tokens)], ["Cost", cost(s.cost)], ["Tool", s.tool_name],
  ].filter(([, v]) => v);
  return el("div", { class: "span-detail", "data-span-id": s.span_id },
    el("h3", {}, s.name),
    el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)])),
    s.error ? el("div", { class: "error span-error" }, "error: ", s.error) : null,
    messages("Input messages", s.input_messages, "input-messages"),
    messages("Output messages", s.output_messages, "output-messages"),
    s.kind === "tool" ? [el("h4", {}, "Arguments"), structured(s.tool_arguments, "tool-arguments"),
      s.tool_result !== null && s.tool_result !== undefined
        ? [el("h4", {}, "Result"), structured(s.tool_result, "tool-result")] : null] : null,
    el("details", { class: "attributes" }, el("summary", {}, `${Object.keys(s.attributes).length} attributes`),
      el("dl", { class: "facts" }, Object.entries(s.attributes).map(([k, v]) => [
        el("dt", {}, k), el("dd", {}, block(asText(v)))]))));
}

// The waterfall; ``select(spanId)`` is called when a row is clicked.
export function waterfall(spans, select) {
  if (!spans.length) return el("p", {}, "No spans stored for this run.");
  const t0 = Math.min(...spans.map((s) => s.start));
  const t1 = Math.max(...spans.map((s) => s.end));
  const total = Math.max(t1 - t0, 1e-6);
  const rows = treeOrder(spans).map(({ span: s, depth }) => {
    const bar = el("span", { class: `bar kind-${s.kind}${s.error ? " bar-error" : ""}` });
    bar.style.left = `${((s.start - t0) / total) * 100}%`;
    bar.style.width = `${Math.max(((s.end - s.start) / total) * 100, 0.3)}%`;
    const label = el("span", { class: "span-name" }, s.name);
    label.style.paddingLeft = `${depth * 0.9}em`;
    return el("li", { class: `span-row${s.error ? " has-error" : ""}`, "data-span-id": s.span_id,
      "data-kind": s.kind, tabindex: "0", onclick: () => select(s.span_id),
      onkeydown: (e) => { if (e.key === "Enter") select(s.span_id); } },
    label, el("span", { class: "span-duration" }, duration(s.end - s.start)),
    el("span", { class: "track" }, bar));
  });
  return el("div", { class: "waterfall" },
    el("div", { class: "waterfall-head" }, el("span", {}, `${spans.length} spans`),
      el("span", {}, `total ${duration(total)}`)),
    el("ol", { id: "waterfall" }, rows));
}
