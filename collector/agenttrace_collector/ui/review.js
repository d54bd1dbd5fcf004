// Reviewing a failed run's verdict: mark it right, or correct the step (its agent follows, or the environment
// when a service failed the step's tool call) with a note.
// A review makes the run labelled data for `agenttrace eval --collector` and `agenttrace export`.
import { el, postJSON, when } from "./dom.js";

export function reviewShown(review) {
  if (!review) return null;
  return el("p", { class: `review review-${review.confirmed ? "confirmed" : "corrected"}`, id: "review-state" },
    review.confirmed ? "Reviewed: the verdict is right" : `Corrected: ${review.agent} @ step ${review.step}`,
    ` (by ${review.reviewer}, ${when(review.created_at)})`,
    review.note ? [": ", el("q", { class: "review-note" }, review.note)] : "");
}

export function reviewForm(trajectory, verdict, done) {
  const steps = el("select", { name: "step", id: "review-step" },
    trajectory.steps.map((s) => el("option", { value: String(s.index),
      selected: verdict && verdict.step === s.index ? "selected" : null }, `#${s.index} ${s.agent}`)));
  const environment = el("input", { type: "checkbox", name: "environment", id: "review-environment" });
  const note = el("textarea", { name: "note", id: "review-note", rows: "2", maxlength: "4000",
    placeholder: "why (optional)" });
  const message = el("span", { class: "error", id: "review-error" });
  const send = async (body) => {
    message.textContent = "";
    try {
      await postJSON(`/runs/${encodeURIComponent(trajectory.run_id)}/review`, body);
      done();
    } catch (err) {
      message.textContent = err.message;
    }
  };
  const withNote = (body) => (note.value.trim() ? { ...body, note: note.value.trim() } : body);
  return el("form", { id: "review-form", class: "review-form", onsubmit: (e) => e.preventDefault() },
    el("strong", {}, "Review: "),
    verdict && verdict.agent ? [el("button", { type: "button", id: "review-confirm",
      onclick: () => send(withNote({})) }, "Verdict is right"), " or "] : "",
    "decisive step ", steps, " ",
    el("button", { type: "button", id: "review-correct",
      onclick: () => send(withNote({ step: Number(steps.value),
        ...(environment.checked ? { agent: "environment" } : {}) })) }, "Set as decisive"),
    " ", el("label", { for: "review-environment" }, environment,
      " a service failed this step's tool call (no agent's fault)"),
    el("div", {}, note), message);
}
