// The runs list: search, filters, paging through any number of runs, live updates.
// The filters live in the URL (#/runs?q=...&outcome=failure&offset=50), so a filtered page can be shared.
import { cost, el, getPage, outcome, pct, runDuration, tokens, when } from "./dom.js";

const PAGE = 50;
const OUTCOMES = ["failure", "success", "unknown"];
const TERMINATIONS = ["completed", "error", "incomplete", "invalid_action", "invalid_format",
  "task_limit_exceeded", "context_limit_exceeded"];
const TEXT_FILTERS = [["q", "Search", "run id, task, answer, agent"], ["service", "Service", "contains"],
  ["name", "Name", "contains"], ["agent", "Blamed agent", "exact name"]];

// A datetime-local value ("2026-01-31T14:05") as Unix seconds, or null.
function seconds(local) {
  const t = local ? Date.parse(local) : NaN;
  return Number.isFinite(t) ? t / 1000 : null;
}

function apiQuery(params, offset) {
  const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  for (const key of ["q", "service", "name", "agent", "outcome", "termination"]) {
    if (params.get(key)) q.set(key, params.get(key));
  }
  for (const key of ["since", "until"]) {
    const s = seconds(params.get(key));
    if (s !== null) q.set(key, String(s));
  }
  return `/runs?${q}`;
}

export function verdictText(r) {
  if (r.agent) {
    return [`${r.agent} @ step ${r.step ?? "?"}`, r.confidence !== null && r.confidence !== undefined
      ? ` (${pct(r.confidence)})` : "", r.uncertain ? " uncertain" : "",
    r.reviewed ? ` - ${r.reviewed}` : ""].join("");
  }
  if (r.job_state === "queued" || r.job_state === "running") return "pending";
  if (r.job_state === "failed") return "attribution failed";
  return "";
}

function row(r) {
  return el("tr", { class: "run", "data-run-id": r.run_id },
    el("td", {}, el("a", { href: `#/runs/${encodeURIComponent(r.run_id)}` }, r.run_id)),
    el("td", {}, r.service || ""),
    el("td", {}, r.name || ""),
    el("td", {}, outcome(r.outcome), " / ", r.termination),
    el("td", {}, when(r.start_time)),
    el("td", { class: "duration num" }, runDuration(r)),
    el("td", { class: "n-steps num" }, r.n_steps),
    el("td", { class: "tokens num" }, tokens(r.input_tokens, r.output_tokens)),
    el("td", { class: "cost num" }, cost(r.cost)),
    el("td", { class: `verdict-cell${r.uncertain ? " uncertain" : ""}` }, verdictText(r)),
    el("td", {}, r.outcome === "failure"
      ? el("a", { class: "compare-link", href: `#/compare/${encodeURIComponent(r.run_id)}` }, "compare") : ""));
}

function filterForm(params) {
  const form = el("form", { id: "run-filters", class: "filters" });
  const select = (key, label, options) => el("label", {}, `${label} `, el("select", { name: key, id: `filter-${key}` },
    el("option", { value: "" }, "any"),
    options.map((o) => el("option", { value: o, selected: params.get(key) === o ? "selected" : null }, o))));
  form.append(
    ...TEXT_FILTERS.map(([key, label, hint]) => el("label", {}, `${label} `,
      el("input", { name: key, id: `filter-${key}`, type: key === "q" ? "search" : "text", placeholder: hint,
        value: params.get(key) || "" }))),
    select("outcome", "Outcome", OUTCOMES), select("termination", "Termination", TERMINATIONS),
    ...[["since", "From"], ["until", "To"]].map(([key, label]) => el("label", {}, `${label} `,
      el("input", { name: key, id: `filter-${key}`, type: "datetime-local", value: params.get(key) || "" }))),
    el("button", { type: "submit" }, "Apply"), " ",
    el("a", { href: "#/runs", class: "clear" }, "clear"));
  const apply = (event) => {
    if (event) event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (String(value).trim()) next.set(key, String(value).trim());
    location.hash = `#/runs${next.toString() ? `?${next}` : ""}`;
  };
  form.addEventListener("submit", apply);
  form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => apply()));
  return form;
}

function pager(params, offset, total) {
  const link = (to, label, id) => {
    const next = new URLSearchParams(params);
    if (to) next.set("offset", String(to)); else next.delete("offset");
    return el("a", { href: `#/runs?${next}`, id }, label);
  };
  const last = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
  return el("p", { class: "pager" },
    offset > 0 ? [link(0, "« newest", "page-first"), " ", link(Math.max(0, offset - PAGE), "‹ newer", "page-prev"), " "] : "",
    el("span", { id: "page-info" }, total ? `${offset + 1}-${Math.min(offset + PAGE, total)} of ${total}` : "no runs"),
    offset + PAGE < total ? [" ", link(offset + PAGE, "older ›", "page-next"), " ", link(last, "oldest »", "page-last")] : "");
}

export async function showRuns(params) {
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const path = apiQuery(params, offset);
  let { items, total } = await getPage(path);
  const body = el("tbody", {}, items.map(row));
  const paging = el("div", {}, pager(params, offset, total));
  const status = el("span", { id: "live-status", class: "muted" }, "live");
  let seen = JSON.stringify(items);
  // Polled by the router while this view is shown: new runs and verdicts appear without a reload.
  const poll = async () => {
    ({ items, total } = await getPage(path));
    const now = JSON.stringify(items);
    status.textContent = `live, updated ${new Date().toLocaleTimeString()}`;
    if (now === seen) return;
    seen = now;
    body.replaceChildren(...items.map(row));
    paging.replaceChildren(pager(params, offset, total));
  };
  return {
    nodes: [
      el("h2", {}, "Runs ", status),
      filterForm(params),
      paging,
      el("table", { id: "runs" },
        el("thead", {}, el("tr", {}, ["Run", "Service", "Name", "Outcome", "Start", "Duration", "Steps", "Tokens",
          "Cost", "Verdict", ""].map((h) => el("th", {}, h)))),
        body),
    ],
    poll,
  };
}
