// Building the page from API data: every value goes in as text (text nodes / textContent), never as HTML.
// The API client keeps a token in this tab's sessionStorage and sends it as "Authorization: Bearer";
// it never goes into a URL.

export const API = "../api/v1";
export const TOKEN_KEY = "agenttrace.token";
const LONG = 400; // characters after which text starts folded

export class NeedsToken extends Error {}

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function request(path, init) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { ...(init && init.headers), ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const resp = await fetch(API + path, { ...init, headers });
  if (resp.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new NeedsToken(token ? "The collector did not accept that token." : "This collector needs a token.");
  }
  if (!resp.ok) {
    const body = await resp.text();
    let detail = body;
    try { detail = JSON.parse(body).detail; } catch (_) { /* not JSON: the text as it is */ }
    throw new Error(`${resp.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return resp;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

// The JSON body and the total the X-Total-Count header gives (listing endpoints).
export async function getPage(path) {
  const resp = await request(path);
  return { items: await resp.json(), total: Number(resp.headers.get("X-Total-Count") || 0) };
}

export async function postJSON(path, body) {
  const resp = await request(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  return resp.json();
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  if (seconds < 0.01) return `${(seconds * 1000).toFixed(1)} ms`;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function runDuration(r) {
  return r.start_time && r.end_time ? duration(r.end_time - r.start_time) : "";
}

export function tokens(input, output) {
  if (!input && !output) return "";
  return `${((input || 0) + (output || 0)).toLocaleString()} (${(input || 0).toLocaleString()} in / ${(output || 0).toLocaleString()} out)`;
}

export function cost(usd) {
  if (usd === null || usd === undefined) return "";
  return usd >= 0.01 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(5)}`;
}

export function asText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// A <pre> of the text; long text starts folded with a button to unfold it.
export function block(text, cls) {
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

// Tool arguments or results: an object's fields one by one, multi-line text (code) as a code block of its own.
export function structured(value, cls) {
  if (value && typeof value === "object" && !Array.isArray(value)
      && Object.values(value).some((v) => typeof v === "string" && v.includes("\n"))) {
    return el("dl", { class: `fields ${cls}` }, Object.entries(value).map(([k, v]) => [
      el("dt", {}, k),
      el("dd", {}, typeof v === "string" && v.includes("\n") ? block(v, "code") : asText(v)),
    ]));
  }
  const text = asText(value);
  return block(text, typeof value === "string" && text.includes("\n") ? `${cls} code` : cls);
}

export function outcome(value) {
  return el("span", { class: `outcome-${value}` }, value);
}

export function pct(p) {
  return p === null || p === undefined ? "" : `${Math.round(p * 100)}%`;
}
