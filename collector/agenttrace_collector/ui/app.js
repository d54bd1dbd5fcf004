// agenttrace collector UI: runs, one run (trajectory, spans, verdict, review), failure modes, compare, lessons.
// Talks to ../api/v1 only. Every value from the API goes into the page as text, never as HTML.
// A collector with tokens answers 401: the page then asks for a token, keeps it in this tab's sessionStorage
// and sends it as "Authorization: Bearer"; it never goes into a URL.
import { NeedsToken, TOKEN_KEY, el, getJSON, when } from "./dom.js";
import { showCompare } from "./compare.js";
import { showFailures } from "./failures.js";
import { showRun } from "./run.js";
import { showRuns } from "./runs.js";

const POLL_MS = 3000; // how often a live view asks for news

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

// #/runs[?filters], #/runs/<id>, #/failures[?range=7d], #/compare/<failed>[/<success>], #/lessons
function view(path, params) {
  const run = path.match(/^\/runs\/([^/]+)$/);
  if (run) return showRun(decodeURIComponent(run[1]), route);
  const compare = path.match(/^\/compare\/([^/]+)(?:\/([^/]+))?$/);
  if (compare) return showCompare(decodeURIComponent(compare[1]), compare[2] && decodeURIComponent(compare[2]));
  if (path === "/failures") return showFailures(params);
  if (path === "/lessons") return showLessons();
  return showRuns(params);
}

let shown = 0; // the latest route wins when an earlier one finishes loading after it
let timer = null;

function schedule(ticket, poll) {
  timer = setTimeout(async () => {
    if (ticket !== shown) return;
    try {
      if (!document.hidden) await poll();
    } catch (err) {
      document.getElementById("live-status")?.replaceChildren(`not updated: ${err.message}`);
    }
    if (ticket === shown) schedule(ticket, poll);
  }, POLL_MS);
}

async function route() {
  const ticket = ++shown;
  clearTimeout(timer);
  const main = document.getElementById("view");
  main.dataset.route = "loading";
  const [path, query] = (location.hash.replace(/^#/, "") || "/runs").split("?");
  const params = new URLSearchParams(query || "");
  let shownRoute = query ? `${path}?${query}` : path; // says which view is shown, once it is loaded
  try {
    const content = await view(path, params);
    if (ticket !== shown) return;
    const nodes = Array.isArray(content) ? content : content.nodes;
    main.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
    if (content.poll) schedule(ticket, content.poll);
  } catch (err) {
    if (ticket !== shown) return;
    if (err instanceof NeedsToken) {
      main.replaceChildren(tokenForm(err.message));
      shownRoute = "token";
    } else {
      main.replaceChildren(el("p", { class: "error", id: "load-error" }, `Could not load: ${err.message}`));
    }
  }
  document.getElementById("forget-token").hidden = !sessionStorage.getItem(TOKEN_KEY);
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("current", path.startsWith(a.getAttribute("href").slice(1)));
  }
  main.dataset.route = shownRoute;
}

window.addEventListener("hashchange", route);
document.getElementById("forget-token").addEventListener("click", forgetToken);
route();
