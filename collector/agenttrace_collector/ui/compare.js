// Compare: a failed run beside a successful run of the same name (or task), aligned step by step, the first
// step where they differ (agent, output, tool calls or hand-off) marked.
import { block, el, getJSON, getPage, outcome, structured } from "./dom.js";

function signature(s) {
  return JSON.stringify([s.agent, s.content, s.tool_calls.map((c) => [c.name, c.arguments]), s.transfer_to]);
}

export function firstDivergence(a, b) {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    if (!a[i] || !b[i] || signature(a[i]) !== signature(b[i])) return i;
  }
  return null;
}

// The newest successful run with the failed run's exact name, else with its exact task.
async function findPeer(t) {
  for (const [key, value, field] of [["name", t.name, "name"], ["q", t.task, "task"]]) {
    if (!value) continue;
    const { items } = await getPage(`/runs?${new URLSearchParams({ [key]: value, outcome: "success", limit: "20" })}`);
    for (const r of items) {
      const peer = field === "name" ? r : (await getJSON(`/runs/${encodeURIComponent(r.run_id)}`)).trajectory;
      if (peer[field] === value) return r.run_id;
    }
  }
  return null;
}

function cell(s) {
  if (!s) return el("td", { class: "missing" }, "(no step)");
  return el("td", {}, el("div", { class: "step-head" }, el("span", { class: "step-agent" }, s.agent)),
    s.content ? block(s.content, "step-content") : null,
    s.tool_calls.map((c) => el("div", { class: "tool-call" }, el("code", { class: "tool-name" }, c.name), " ",
      structured(c.arguments, "tool-arguments"))),
    s.transfer_to ? el("div", { class: "handoff" }, "→ ", s.transfer_to) : null,
    s.error ? el("div", { class: "error" }, s.error) : null);
}

export async function showCompare(failedId, peerId) {
  const failed = (await getJSON(`/runs/${encodeURIComponent(failedId)}`)).trajectory;
  const okId = peerId || await findPeer(failed);
  if (!okId) {
    return [el("h2", {}, "Compare"), el("p", { id: "no-peer" },
      `No successful run named ${JSON.stringify(failed.name)} or with the same task to compare `,
      el("a", { href: `#/runs/${encodeURIComponent(failed.run_id)}` }, failed.run_id), " with.")];
  }
  const ok = (await getJSON(`/runs/${encodeURIComponent(okId)}`)).trajectory;
  const diverge = firstDivergence(failed.steps, ok.steps);
  const n = Math.max(failed.steps.length, ok.steps.length);
  const rows = [];
  for (let i = 0; i < n; i += 1) {
    rows.push(el("tr", { class: i === diverge ? "aligned divergence" : "aligned", "data-index": i },
      el("th", {}, `#${i}`, i === diverge ? el("div", { class: "tag" }, "first divergence") : ""),
      cell(failed.steps[i]), cell(ok.steps[i])));
  }
  const head = (t) => el("th", {}, el("a", { href: `#/runs/${encodeURIComponent(t.run_id)}` }, t.run_id), " ",
    outcome(t.outcome), el("div", { class: "muted" }, t.name || ""));
  return [
    el("h2", {}, "Compare"),
    el("p", { id: "divergence" }, diverge === null ? "The runs take the same steps."
      : `The runs first differ at step ${diverge}.`),
    el("table", { id: "compare", class: "compare" },
      el("thead", {}, el("tr", {}, el("th", {}, "Step"), head(failed), head(ok))), el("tbody", {}, rows)),
  ];
}
