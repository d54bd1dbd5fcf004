// agenttrace collector UI: runs, one run's trajectory with its verdict, lessons. Read-only; talks to ../api/v1.
// Every value from the API goes into the page as text (textContent / text nodes), never as HTML.
// A collector with tokens answers 401: the page then asks for a token, keeps it in this tab's sessionStorage
// and sends it as "Authorization: Bearer"; it never goes into a URL.
"use strict";

const API = "../api/v1";
const TOKEN_KEY = "agenttrace.token";
const LONG = 400; // characters after which content starts collapsed
const OUTCOMES = ["", "failure", "success", "unknown"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class NeedsToken extends Error {}

async function getJSON(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const resp = await fetch(API + path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new NeedsToken(token ? "The collector did not accept that token." : "This collector needs a token.");
  }
  if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText}: ${await resp.text()}`);
  return resp.json();
}

function tokenForm(message) {
  const input = el("input", { id: "token-input", type: "password", autocomplete: "off", required: "required" });
  const form = el("form", { id: "token-form" },
    el("p", { id: "token-message" }, message),
    el("label", {}, "Token: ", input), " ", el("button", { type: "submit" }, "Use token"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    route();
  });
  return form;
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  route();
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function asText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// A <pre> of the text; long text starts collapsed with a button to expand it.
function block(text, cls) {
  const pre = el("pre", { class: cls || null }, text);
  if (text.length <= LONG) return pre;
  pre.classList.add("collapsed");
  const button = el("button", { class: "toggle", type: "button" }, "show all");
  button.addEventListener("click", () => {
    const collapsed = pre.classList.toggle("collapsed");
    button.textContent = collapsed ? "show all" : "show less";
  });
  return el("div", {}, pre, button);
}

function outcome(value) {
  return el("span", { class: `outcome-${value}` }, value);
}

// ---- runs list ------------------------------------------------------------------------------------------------

async function showRuns(params) {
  const filter = params.get("outcome") || "";
  const select = el("select", { id: "outcome-filter" },
    OUTCOMES.map((o) => el("option", { value: o, selected: o === filter ? "selected" : null }, o || "all outcomes")));
  select.addEventListener("change", () => {
    location.hash = select.value ? `#/runs?outcome=${encodeURIComponent(select.value)}` : "#/runs";
  });
  const runs = await getJSON("/runs?limit=200" + (filter ? `&outcome=${encodeURIComponent(filter)}` : ""));
  const rows = runs.map((r) => el("tr", { class: "run", "data-run-id": r.run_id },
    el("td", {}, el("a", { href: `#/runs/${encodeURIComponent(r.run_id)}` }, r.run_id)),
    el("td", {}, r.service || ""),
    el("td", {}, r.name || ""),
    el("td", {}, outcome(r.outcome), " / ", r.termination),
    el("td", {}, when(r.start_time)),
    el("td", { class: "n-steps" }, r.n_steps),
    el("td", { class: "verdict-cell" }, r.agent ? `${r.agent} @ step ${r.step ?? "?"}` : "")));
  return [
    el("h2", {}, "Runs"),
    el("p", {}, el("label", {}, "Outcome: ", select), ` ${runs.length} run(s), newest first`),
    el("table", { id: "runs" },
      el("thead", {}, el("tr", {}, ["Run", "Service", "Name", "Outcome", "Start", "Steps", "Verdict"].map(
        (h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
  ];
}

// ---- one run --------------------------------------------------------------------------------------------------

function toolCall(call) {
  return el("li", { class: "tool-call" },
    el("code", { class: "tool-name" }, call.name), call.id ? ` (${call.id})` : "",
    el("div", {}, "arguments:", block(asText(call.arguments), "tool-arguments")),
    call.result !== null && call.result !== undefined
      ? el("div", {}, "result:", block(asText(call.result), "tool-result")) : null,
    call.error ? el("div", { class: "error tool-error" }, "error: ", call.error) : null);
}

function verdictBox(v) {
  return el("div", { class: "verdict" },
    el("strong", {}, "Decisive step"), ` - blamed on `, el("strong", { class: "verdict-agent" }, v.agent ?? "?"),
    ` at step ${v.step ?? "?"} by `, el("code", { class: "verdict-attributor" }, v.attributor),
    v.confidence !== null && v.confidence !== undefined ? ` (confidence ${v.confidence})` : "",
    el("div", { class: "verdict-reason" }, v.reason));
}

function step(s, verdict) {
  const decisive = verdict && verdict.step === s.index;
  return el("li", { class: decisive ? "step decisive" : "step", "data-index": s.index, "data-agent": s.agent },
    el("div", { class: "step-head" }, `#${s.index} `, el("span", { class: "step-agent" }, s.agent),
      s.role && s.role !== "assistant" ? ` (${s.role})` : "",
      s.start_time ? el("small", {}, "  ", when(s.start_time)) : null),
    decisive ? verdictBox(verdict) : null,
    s.input ? el("details", {}, el("summary", {}, "input"), block(s.input, "step-input")) : null,
    s.content ? block(s.content, "step-content") : null,
    s.tool_calls.length ? el("ul", { class: "tools" }, s.tool_calls.map(toolCall)) : null,
    s.transfer_to ? el("div", { class: "handoff" }, "→ hands off to ", el("strong", {}, s.transfer_to)) : null,
    s.error ? el("div", { class: "error step-error" }, "error: ", s.error) : null);
}

async function showRun(runId) {
  const { trajectory: t, attributions } = await getJSON(`/runs/${encodeURIComponent(runId)}`);
  const verdict = attributions.length ? attributions[attributions.length - 1] : null;
  const facts = [
    ["Run", t.run_id], ["Name", t.name], ["Service", t.service], ["Outcome", outcome(t.outcome)],
    ["Termination", t.termination], ["Task", t.task], ["Expected", t.expected], ["Answer", t.answer],
    ["Failure reason", t.failure_reason], ["Started", when(t.start_time)], ["Ended", when(t.end_time)],
  ].filter(([, v]) => v !== null && v !== undefined && v !== "");
  const others = attributions.slice(0, -1);
  return [
    el("p", {}, el("a", { href: "#/runs" }, "← all runs")),
    el("h2", {}, `Run ${t.run_id}`),
    el("dl", { class: "facts", id: "run-facts" },
      facts.map(([k, v]) => [el("dt", {}, k), el("dd", { "data-field": k }, v)])),
    verdict ? verdictBox(verdict) : el("p", {}, "No verdict for this run."),
    verdict && verdict.step === null ? el("p", {}, "The verdict names no step.") : null,
    others.length ? el("details", {}, el("summary", {}, `${others.length} earlier verdict(s)`),
      others.map(verdictBox)) : null,
    el("h3", {}, `Trajectory: ${t.steps.length} step(s)`),
    el("ol", { class: "steps", id: "steps" }, t.steps.map((s) => step(s, verdict))),
  ];
}

// ---- lessons --------------------------------------------------------------------------------------------------

async function showLessons() {
  const lessons = await getJSON("/lessons");
  const byAgent = new Map();
  for (const l of lessons) byAgent.set(l.agent, [...(byAgent.get(l.agent) || []), l]);
  const sections = [...byAgent.entries()].map(([agent, items]) => el("section", { class: "agent-lessons" },
    el("h3", {}, agent),
    el("ul", {}, items.map((l) => el("li", { class: "lesson" }, l.text, " ",
      el("small", {}, when(l.created_at),
        l.run_id ? [" from ", el("a", { href: `#/runs/${encodeURIComponent(l.run_id)}` }, l.run_id)] : "",
        l.step !== null && l.step !== undefined ? ` step ${l.step}` : ""))))));
  return [el("h2", {}, "Lessons by agent"), sections.length ? sections : el("p", {}, "No lessons yet.")];
}

// ---- routing: #/runs, #/runs?outcome=failure, #/runs/<id>, #/lessons -----------------------------------------

let shown = 0; // the latest route wins when an earlier one finishes loading after it

async function route() {
  const ticket = ++shown;
  const view = document.getElementById("view");
  view.dataset.route = "loading";
  const [path, query] = (location.hash.replace(/^#/, "") || "/runs").split("?");
  const params = new URLSearchParams(query || "");
  const runMatch = path.match(/^\/runs\/(.+)$/);
  let shownRoute = query ? `${path}?${query}` : path; // says which view is shown, once it is loaded
  try {
    const content = runMatch ? await showRun(decodeURIComponent(runMatch[1]))
      : path === "/lessons" ? await showLessons() : await showRuns(params);
    if (ticket !== shown) return;
    view.replaceChildren(...content.flat(Infinity).filter(Boolean));
  } catch (err) {
    if (ticket !== shown) return;
    if (err instanceof NeedsToken) {
      view.replaceChildren(tokenForm(err.message));
      shownRoute = "token";
    } else {
      view.replaceChildren(el("p", { class: "error", id: "load-error" }, `Could not load: ${err.message}`));
    }
  }
  document.getElementById("forget-token").hidden = !sessionStorage.getItem(TOKEN_KEY);
  view.dataset.route = shownRoute;
}

window.addEventListener("hashchange", route);
document.getElementById("forget-token").addEventListener("click", forgetToken);
route();
