// A message's branch actions, as drawn: Edit on the user's messages, Regenerate (Retry
// after a stopped reply) on the assistant's, Retry on a message left without a reply, and
// the `‹ 2/3 ›` switcher on a message with other versions. What they do is branches.js.

import { h } from "./dom.js";
import { state } from "./state.js";

const chat = state.chat;

/** A small button of a message's foot; `data-act` says what it does. */
function action(act, text, label, dataset = {}) {
  return h("button", { type: "button", class: `msg-act msg-${act}`, "aria-label": label, text, dataset: { act, ...dataset } });
}

/** `‹ 2/3 ›` for a message with other versions (`siblingSeqs` longer than one), else null. */
export function switcher(message) {
  const seqs = message.siblingSeqs || [];
  const at = seqs.indexOf(message.seq);
  if (seqs.length < 2 || at < 0) return null;
  const step = (to, text, label) =>
    h("button", {
      type: "button",
      class: `branch-step branch-${text === "‹" ? "prev" : "next"}`,
      "aria-label": label,
      disabled: to === undefined,
      dataset: { branchTo: to ?? "" },
      text,
    });
  return h(
    "span",
    { class: "branch-switch", role: "group", "aria-label": `Version ${at + 1} of ${seqs.length}` },
    step(seqs[at - 1], "‹", "Previous version"),
    h("span", { class: "branch-pos", "aria-hidden": "true", text: `${at + 1}/${seqs.length}` }),
    step(seqs[at + 1], "›", "Next version"),
  );
}

/** What goes in the foot of a stored message, after Copy. */
export function footActions(message) {
  const out = [];
  if (message.seq) {
    if (message.role === "user") {
      out.push(action("edit", "Edit", "Edit your message"));
    } else if (message.role === "assistant" && message.stopped && message.parentSeq) {
      out.push(action("retry", "Retry", "Retry: write this reply again", { target: message.parentSeq }));
    } else if (message.role === "assistant") {
      out.push(action("regenerate", "Regenerate", "Regenerate this reply"));
    }
  }
  const versions = switcher(message);
  if (versions) out.push(versions);
  return out;
}

/** The list can only be read, not changed: a read-only view or a conversation ended. */
function readOnly() {
  return Boolean(chat.viewing) || Boolean(chat.closed);
}

/** Brings the actions shown up to date with what the page is doing: Retry on the last
 *  message when it is the user's and has no reply, nothing that writes while a reply is
 *  written or in a read-only view. Called whenever the message box is. */
export function syncActions(list) {
  const busy = chat.sending || Boolean(chat.live) || chat.loading || chat.retryUntil > Date.now();
  const items = list.querySelectorAll(":scope > li.msg");
  const last = items[items.length - 1];
  const unanswered =
    last && last.classList.contains("msg-user") && last.dataset.seq && !last.classList.contains("msg-pending") && !chat.live && !chat.sending;
  for (const button of list.querySelectorAll("button.msg-retry[data-unanswered]")) {
    if (!unanswered || !last.contains(button)) button.remove();
  }
  if (unanswered && !last.querySelector("button.msg-retry")) {
    const foot = last.querySelector(":scope > .msg-foot");
    const retry = action("retry", "Retry", "Retry: answer this message", { target: last.dataset.seq, unanswered: "" });
    if (foot) foot.querySelector(".msg-copy")?.after(retry);
  }
  const hidden = readOnly();
  for (const button of list.querySelectorAll("button[data-act]")) {
    button.hidden = hidden;
    button.disabled = busy;
  }
  for (const button of list.querySelectorAll("button[data-branch-to]")) {
    button.disabled = busy || !button.dataset.branchTo || chat.closed === "deleted";
  }
}
