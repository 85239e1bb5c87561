// A conversation as a tree: editing one of the user's messages, regenerating a reply,
// retrying a turn that failed or was stopped, and moving between versions with the
// `‹ 2/3 ›` switcher. What is shown is always the active path (root to head) as the
// server tells it; after any of these it is read and drawn again.

import { ApiError, send, sendJson } from "./api.js";
import {
  el,
  markSummarised,
  messageItem,
  scrollToEnd,
  setHeading,
  setUsage,
  shownItem,
  sourceOf,
  typingItem,
  updateComposer,
  updateEmpty,
} from "./chat-panel.js";
import { announce, h } from "./dom.js";
import { indexDrafts, refreshCards, renderItem } from "./drafts.js";
import { showError } from "./notices.js";
import { startRetryCountdown } from "./quota.js";
import { fetchConversation, sessionPath } from "./sessions.js";
import { openConversationId, state } from "./state.js";
import { STREAM, beginLive, endLive, followEvents, readTurn } from "./stream.js";

const chat = state.chat;
/** What the chat is told when a turn of ours ends; set by initBranches(). */
const hooks = { onTurn() {}, finish() {} };

export function initBranches(callbacks) {
  Object.assign(hooks, callbacks);
  el.messages.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-act], button[data-branch-to]");
    if (!button || !el.messages.contains(button) || button.disabled) return;
    const item = button.closest("li.msg");
    if (button.dataset.branchTo) switchTo(Number(button.dataset.branchTo), button);
    else if (button.dataset.act === "edit") openEditor(item);
    else if (button.dataset.act === "regenerate") regenerate(Number(item.dataset.seq), item);
    else if (button.dataset.act === "retry") retry(Number(button.dataset.target), item);
  });
}

function busy() {
  return chat.sending || Boolean(chat.live) || Boolean(chat.viewing) || Boolean(chat.closed) || chat.retryUntil > Date.now();
}

// ---- drawing the active path -----------------------------------------------------------

/** Shows `conversation` (the body of GET /api/sessions/{id}, every page) and its drafts in
 *  place of what is shown. */
export function drawPath(conversation, drafts) {
  setHeading(conversation.title);
  setUsage(conversation.usage);
  indexDrafts(drafts);
  chat.lastSeq = conversation.messages.reduce((max, m) => Math.max(max, m.seq), 0);
  el.messages.replaceChildren(...conversation.messages.map((m) => renderItem(m)));
  markSummarised(conversation.summarisedThrough);
  refreshCards(); // the buttons, as the page is now
  updateEmpty();
}

/** Reads the open conversation's active path again and draws it. Returns whether it was. */
export async function redrawOpen() {
  const id = openConversationId();
  if (!id) return false;
  const token = chat.loadToken;
  let found;
  try {
    found = await fetchConversation(id);
  } catch (err) {
    if (token === chat.loadToken && !(err instanceof ApiError && (err.status === 401 || err.status === 404))) showError(err.message);
    return false;
  }
  if (token !== chat.loadToken || openConversationId() !== id) return false;
  drawPath(found.conversation, found.drafts);
  return true;
}

/** The last stored message shown: the head, as this page knows it. */
export function shownHead() {
  const items = el.messages.querySelectorAll(":scope > li.msg[data-seq]:not([data-seq=''])");
  return items.length ? Number(items[items.length - 1].dataset.seq) : null;
}

// ---- the switcher ----------------------------------------------------------------------

/** Moves the head to the newest leaf under `seq` and shows the new path. What arrives
 *  for the old path meanwhile is dropped; what other devices changed is read after.
 *  Returns whether the new path is shown. */
async function moveHead(seq) {
  const id = openConversationId();
  if (!id || chat.sending || chat.live) return false;
  const token = ++chat.loadToken;
  chat.loading = true;
  updateComposer();
  try {
    await sendJson("PUT", `${sessionPath(id)}/head`, { seq });
    // The new path with its drafts, in one request.
    const { conversation, drafts } = await fetchConversation(id);
    if (token !== chat.loadToken) return false;
    drawPath(conversation, drafts);
    return true;
  } catch (err) {
    if (token === chat.loadToken && !(err instanceof ApiError && err.status === 401)) showError(err.message);
    return false;
  } finally {
    if (token === chat.loadToken) {
      chat.loading = false;
      hooks.finish();
    }
  }
}

/** The switcher's arrows: show the version `seq` of a message. */
async function switchTo(seq, button) {
  const forward = button.classList.contains("branch-next");
  if (!(await moveHead(seq))) return;
  // Keyboard users stay where they were: on the same arrow of the version now shown.
  const item = shownItem(seq);
  if (!item) return;
  item.scrollIntoView({ block: "nearest" });
  const same = item.querySelector(forward ? ".branch-next" : ".branch-prev");
  const other = item.querySelector(forward ? ".branch-prev" : ".branch-next");
  (same && !same.disabled ? same : other)?.focus();
  const versions = item.querySelector(".branch-switch");
  if (versions) announce(versions.getAttribute("aria-label"));
}

/** Opens the branch that holds message `seq` (a search result off the active path). */
export async function openBranchOf(seq) {
  await moveHead(seq);
}

// ---- editing a message -----------------------------------------------------------------

function closeEditors(except = null) {
  for (const editor of el.messages.querySelectorAll(".msg-editor")) {
    const item = editor.closest("li.msg");
    if (item !== except) cancelEdit(item, { focus: false });
  }
}

/** Opens the user's message `item` for editing, in place. */
function openEditor(item, text = sourceOf(item)) {
  // Not while a reply is written; during a 429's countdown it opens (Send waits for it).
  if (chat.sending || chat.live || chat.viewing || chat.closed || item.querySelector(".msg-editor")) return;
  closeEditors(item);
  const input = h("textarea", { class: "msg-edit-input", "aria-label": "Edited message", dir: "auto", rows: 3 });
  input.value = text;
  const form = h(
    "form",
    { class: "msg-editor" },
    input,
    h(
      "div",
      { class: "msg-editor-actions" },
      h("button", { type: "button", class: "btn btn-small btn-quiet msg-edit-cancel", text: "Cancel" }),
      h("button", { type: "submit", class: "btn btn-small btn-primary msg-edit-send", text: "Send" }),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendEdit(item, input.value);
  });
  form.querySelector(".msg-edit-cancel").addEventListener("click", () => cancelEdit(item));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation(); // Escape closes the editor, nothing more
      cancelEdit(item);
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendEdit(item, input.value);
    }
  });
  item.classList.add("msg-editing");
  item.querySelector(":scope > .msg-text").hidden = true;
  item.querySelector(":scope > .msg-foot").hidden = true;
  item.querySelector(":scope > .msg-text").after(form);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

/** Leaves the message as it was. */
function cancelEdit(item, { focus = true } = {}) {
  const form = item.querySelector(":scope > .msg-editor");
  if (!form) return;
  form.remove();
  item.classList.remove("msg-editing");
  item.querySelector(":scope > .msg-text").hidden = false;
  item.querySelector(":scope > .msg-foot").hidden = false;
  if (focus) item.querySelector("button.msg-edit")?.focus();
}

function sendEdit(item, text) {
  if (!text.trim() || busy()) return;
  const seq = Number(item.dataset.seq);
  el["composer-input"].focus();
  runTurn({
    path: "/api/chat",
    json: { messages: [{ role: "user", content: text }], sessionId: openConversationId(), editSeq: seq },
    cutFrom: item,
    text,
  });
}

// ---- regenerating, retrying ------------------------------------------------------------

/** A new version of the reply `seq`. */
function regenerate(seq, item) {
  if (busy()) return;
  el["composer-input"].focus();
  runTurn({ path: `${sessionPath(openConversationId())}/messages/${seq}/regenerate`, cutFrom: item });
}

/** A reply to the user's message `userSeq` (its turn failed, or its reply was stopped). */
function retry(userSeq, item) {
  if (busy()) return;
  el["composer-input"].focus();
  const cutFrom = item.classList.contains("msg-user") ? item.nextElementSibling : item;
  runTurn({ path: `${sessionPath(openConversationId())}/messages/${userSeq}/regenerate`, cutFrom });
}

function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Sends an edit or a regenerate and streams its reply, like a message from the box: the
 *  messages from `cutFrom` on leave the screen (they stay stored, as other versions), the
 *  edited text (`text`) and the reply take their place, and then the path is read again.
 *  A retry after a dropped connection sends the same Idempotency-Key. */
async function runTurn({ path, json, cutFrom, text = null }) {
  const sessionId = openConversationId();
  if (!sessionId) return;
  closeEditors();
  chat.sending = true;
  showError("");
  const removed = [];
  for (let node = cutFrom; node; ) {
    const next = node.nextElementSibling;
    removed.push(node);
    node.remove();
    node = next;
  }
  const mine = text === null ? null : messageItem({ role: "user", content: text }, { pending: true });
  const typing = typingItem();
  el.messages.append(...(mine ? [mine] : []), typing);
  updateEmpty();
  scrollToEnd();
  const token = chat.loadToken;
  const key = newIdempotencyKey();
  let refused = false; // nothing was stored: an edit opens again with its text
  const turn = beginLive({
    sessionId,
    bubble: typing,
    own: true,
    onStarted() {
      mine?.classList.remove("msg-pending"); // the server has it
    },
  });
  const connect = (lastId) => {
    if (lastId !== null && turn.turnId) return followEvents(turn, lastId);
    return send("POST", path, { json, headers: { Accept: STREAM, "Idempotency-Key": key }, signal: turn.signal });
  };
  let final = null;
  try {
    final = await readTurn(turn, connect);
  } catch (err) {
    if (err.name === "AbortError") return; // another conversation was opened meanwhile
    typing.remove();
    if (!turn.turnId) {
      // Nothing was stored: the conversation is shown as it was.
      mine?.remove();
      el.messages.append(...removed);
      refused = true;
    }
    if (err instanceof ApiError && err.status === 429) {
      startRetryCountdown(err.retryAfter ?? 60);
    } else if (err instanceof ApiError && err.code === "turn_in_progress") {
      showError("A reply is still being written in this conversation. Try again when it is done.");
      chat.catchUpWanted = true;
    } else if (!(err instanceof ApiError && err.status === 401)) {
      showError(err.message);
      if (turn.turnId) chat.catchUpWanted = true;
    }
  } finally {
    endLive(turn);
    if (turn.turnId) chat.followed.add(turn.turnId);
    if (!final) {
      chat.sending = false;
      hooks.finish();
      if (refused && text !== null && token === chat.loadToken && cutFrom.isConnected) openEditor(cutFrom, text);
    }
  }
  if (!final) return;
  const data = final.data;
  try {
    if (final.event === "error") {
      typing.remove(); // the message is kept; only its reply failed
      showError(data.detail || data.title || "The assistant could not answer.");
    } else if (data.stopped) {
      chat.stoppedSeqs.add(data.seq);
    }
    if (token === chat.loadToken) {
      mine?.classList.remove("msg-pending");
      if (await redrawOpen()) scrollToEnd();
    }
    hooks.onTurn(data);
  } finally {
    chat.sending = false;
    hooks.finish();
  }
}
