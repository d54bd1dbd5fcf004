// Failure modes: the verdicts of a time range grouped by blamed agent and by kind of error, with a trend.
import { el, getJSON, when } from "./dom.js";

const RANGES = [["1d", "24 hours", 86400], ["7d", "7 days", 7 * 86400], ["30d", "30 days", 30 * 86400]];

function trend(counts) {
  const top = Math.max(1, ...counts);
  return el("span", { class: "trend", title: counts.join(", ") }, counts.map((c) => {
    const bar = el("span", { class: "trend-bar" });
    bar.style.height = `${Math.round((c / top) * 100)}%`;
    return bar;
  }));
}

function groupTable(id, title, groups, link) {
  return el("section", {}, el("h3", {}, title),
    groups.length ? el("table", { id, class: "failure-groups" },
      el("thead", {}, el("tr", {}, ["", "Verdicts", "Trend"].map((h) => el("th", {}, h)))),
      el("tbody", {}, groups.map((g) => el("tr", { class: "failure-group", "data-key": g.key },
        el("td", { class: "group-key" }, link ? link(g.key) : g.key),
        el("td", { class: "group-count num" }, g.count), el("td", {}, trend(g.trend))))))
      : el("p", {}, "No verdicts in this range."));
}

export async function showFailures(params) {
  const range = RANGES.find(([key]) => key === params.get("range")) || RANGES[1];
  const until = Date.now() / 1000;
  const modes = await getJSON(`/failures?since=${until - range[2]}&until=${until}&buckets=14`);
  const local = new Date(modes.since * 1000 - new Date().getTimezoneOffset() * 60000); // datetime-local is local time
  const since = local.toISOString().slice(0, 16);
  const agentRuns = (agent) => el("a", { href: `#/runs?${new URLSearchParams({ agent, outcome: "failure" })}` }, agent);
  return [
    el("h2", {}, "Failure modes"),
    el("p", { class: "filters" }, "Range: ", RANGES.map(([key, label]) => [
      key === range[0] ? el("strong", {}, label) : el("a", { href: `#/failures?range=${key}`, id: `range-${key}` }, label),
      " "]),
    ` ${modes.total} verdict(s) from ${when(modes.since)} to ${when(modes.until)}, `,
    `${modes.by_agent.length} agent(s); trend in ${Math.round(modes.bucket_s / 3600)} h buckets.`),
    el("div", { class: "run-columns" },
      groupTable("by-agent", "By blamed agent", modes.by_agent, agentRuns),
      groupTable("by-kind", "By kind of error", modes.by_kind, null)),
    el("p", { class: "muted" }, el("a", { href: `#/runs?${new URLSearchParams({ outcome: "failure", since })}` },
      "the failed runs of this range")),
  ];
}
