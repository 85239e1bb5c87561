// The chat panel: the conversation shown (the one the chat continues, or one opened
// read-only from History) and the message box that sends to it. The pieces it is made of:
// chat-panel.js (what is drawn), notices.js, quota.js, drafts.js (draft cards), sessions.js
// (reading a conversation), stream.js (a reply as it is written) and changes.js (what other
// devices change).

import { ApiError, send } from "./api.js";
import { durationWords } from "./dates.js";
import { initBranches } from "./branches.js";
import { catchUp, markClosed, resumeActive } from "./changes.js";
import { announce, formatDate, show } from "./dom.js";
import { indexDrafts, refreshCards, renderItem } from "./drafts.js";
import { ARCHIVED_NOTE, hideNotice, showError, showNotice } from "./notices.js";
import {
  bindPanel,
  el,
  markStopped,
  markSummarised,
  messageItem,
  scrollToEnd,
  setActions,
  setBusy,
  setHeading,
  setTime,
  setUsage,
  setSuggestions,
  showFailed,
  shownItem,
  sourceOf,
  typedLength,
  typingItem,
  updateComposer,
  updateCount,
  updateEmpty,
} from "./chat-panel.js";
import { copyText } from "./markdown.js";
import { refreshQuota, startRetryCountdown } from "./quota.js";
import { conversationStarted, modelForNewConversation, modelSettled, showConversationModel } from "./models.js";
import { fetchConversation, mostRecentActive, sessionPath } from "./sessions.js";
import { openConversationId, setSessionId, state } from "./state.js";
import { STREAM, beginLive, endLive, followEvents, readTurn, stopFollowing, stopReply } from "./stream.js";

const chat = state.chat;
/** Send turns into Stop under the pointer: a click on Stop this soon after a click on Send
 *  is the second half of a double click, not a wish to stop. */
const STOP_GRACE_MS = 600;
/** What the rest of the page is told, or asked to do; set once by initChat(). */
const hooks = { onTurn() {}, onOpenHistory() {}, onRestore: async () => {} };

export function initChat(callbacks) {
  Object.assign(hooks, callbacks);
  bindPanel();
  initBranches({ onTurn: (data) => hooks.onTurn(data), finish: finishSending });
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  el["composer-input"].addEventListener("input", () => {
    updateCount();
    updateComposer();
  });
  el["composer-input"].addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });
  // A draft card's buttons each say a phrase in the conversation.
  el.messages.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-say]");
    if (button && el.messages.contains(button)) sendMessage(button.dataset.say);
    const copy = event.target.closest("button.msg-copy, button.code-copy");
    if (copy && el.messages.contains(copy)) copyFrom(copy);
    const retry = event.target.closest("button.msg-retry");
    if (retry && el.messages.contains(retry)) retryReply(Number(retry.dataset.seq));
  });
  el["chat-notice-close"].addEventListener("click", hideNotice);
  el["chat-notice-action"].addEventListener("click", () => hooks.onOpenHistory("archived"));
  el["new-chat"].addEventListener("click", startNewConversation);
  el["temporary-switch"].addEventListener("change", () => showTemporary(chat.temporary));
  el["viewer-back"].addEventListener("click", () => exitViewer());
  el["viewer-continue"].addEventListener("click", continueViewed);
  el.send.addEventListener("click", () => {
    chat.sendClickedAt = Date.now();
  });
  el.stop.addEventListener("click", () => {
    el["composer-input"].focus();
    if (Date.now() - chat.sendClickedAt < STOP_GRACE_MS) return;
    stopReply();
  });
}

/** Copy on a message (its text as written) or on a code block (the code). */
async function copyFrom(button) {
  const text = button.classList.contains("code-copy")
    ? button.closest(".code-block").querySelector("pre").textContent
    : sourceOf(button.closest("li.msg"));
  try {
    await copyText(text);
  } catch {
    showError("Copying was not allowed by the browser. Select the text and copy it instead.");
    return;
  }
  button.textContent = "Copied";
  button.classList.add("copied");
  announce("Copied");
  window.setTimeout(() => {
    button.textContent = "Copy";
    button.classList.remove("copied");
  }, 1500);
}

function submitComposer() {
  const text = el["composer-input"].value;
  if (!text.trim() || chat.sending || chat.live || chat.viewing || chat.closed === "deleted") return;
  if (typedLength() > chat.maxChars) {
    // Never cut: the text stays in the box, to shorten or split.
    updateCount();
    showError(`This message is longer than ${chat.maxChars.toLocaleString()} characters. Shorten it or send it in parts.`);
    return;
  }
  el["composer-input"].value = "";
  updateCount();
  sendMessage(text);
  el["composer-input"].focus();
}

/** What the assistant does (GET /api/assistant): the limit of a message, how long an
 *  idle temporary chat lives (the server's SESSION_TTL_SECONDS), and suggestions. */
export function setAssistant(info) {
  if (info.maxMessageChars) chat.maxChars = info.maxMessageChars;
  if (info.sessionTtlSeconds) {
    el["temporary-banner"].textContent =
      `Temporary chat: not saved to history, deleted ${durationWords(info.sessionTtlSeconds)} after the last message`;
  }
  setSuggestions(info.suggestions || []);
  updateCount();
  updateComposer();
}

function renderMessages(messages, summarisedThrough = null) {
  chat.lastSeq = messages.reduce((max, m) => Math.max(max, m.seq), 0);
  setBusy(false);
  el.messages.replaceChildren(...messages.map((m) => renderItem(m)));
  markSummarised(summarisedThrough);
  updateEmpty();
  updateComposer(); // the messages' actions, as the page is now
  scrollToEnd();
  // Which conversation is shown now (the share button follows it).
  document.dispatchEvent(new CustomEvent("chatkeep:conversation", { detail: { id: openConversationId() } }));
}

// ---- loading conversations -------------------------------------------------------------

/** Forgets what was shown of the previous conversation (a stream into it stops being read). */
function leaveConversation() {
  stopFollowing();
  chat.closed = null;
  chat.stoppedSeqs = new Set();
  chat.catchUpWanted = false;
}

/** The "Temporary chat" switch is offered for a new conversation only; the banner shows
 *  while a temporary conversation is open (or about to start). */
function showTemporary(temporary) {
  chat.temporary = Boolean(temporary);
  const fresh = !state.sessionId && !chat.viewing;
  if (!fresh) el["temporary-switch"].checked = false;
  show(el["temporary-choice"], fresh);
  show(el["temporary-banner"], chat.temporary || (fresh && el["temporary-switch"].checked));
  document.dispatchEvent(new CustomEvent("chatkeep:conversation", { detail: { id: openConversationId() } }));
}

function clearConversation() {
  showTemporary(false);
  setHeading("");
  setUsage(null);
  showConversationModel(null);
  indexDrafts([]);
  renderMessages([]);
}

/** Shows the conversation the chat continues (from localStorage), if it still exists. */
export async function loadCurrent() {
  const token = ++chat.loadToken;
  leaveConversation();
  chat.viewing = null;
  chat.loading = true;
  updateEmpty();
  show(el["viewer-bar"], false);
  el.composer.hidden = false;
  showError("");
  try {
    if (!state.sessionId && !state.chosen) {
      const recent = await mostRecentActive();
      if (token !== chat.loadToken) return;
      if (recent) setSessionId(recent);
    }
    const id = state.sessionId;
    if (!id) {
      clearConversation();
      return;
    }
    const { conversation, drafts } = await fetchConversation(id);
    if (token !== chat.loadToken) return;
    if (conversation.status === "trashed") {
      setSessionId(null);
      clearConversation();
      showNotice(
        `Your previous conversation “${conversation.title}” is in the trash. Restore it from History ` +
          "(Trash) to continue it; a new message starts a new conversation.",
      );
    } else {
      // An archived conversation shows as any other, ready to write in: sending continues
      // it (the message restores it on the server, in the same request).
      chat.closed = conversation.status === "archived" ? "archived" : null;
      if (chat.closed) showNotice(ARCHIVED_NOTE);
      else hideNotice();
      setHeading(conversation.title);
      setUsage(conversation.usage);
      showTemporary(conversation.temporary);
      showConversationModel(conversation.model);
      indexDrafts(drafts);
      renderMessages(conversation.messages, conversation.summarisedThrough);
      showFailed(conversation.failedTurn);
      resumeActive(id, conversation.activeTurn);
    }
  } catch (err) {
    if (token !== chat.loadToken) return;
    if (err instanceof ApiError && err.status === 404) {
      setSessionId(null);
      clearConversation();
    } else if (!(err instanceof ApiError && err.status === 401)) {
      showError(err.message);
    }
  } finally {
    if (token === chat.loadToken) {
      chat.loading = false;
      updateEmpty();
      updateComposer();
      if (chat.catchUpWanted) catchUp();
    }
  }
}

export function startNewConversation() {
  el["temporary-switch"].checked = false;
  setSessionId(null);
  hideNotice();
  loadCurrent();
  el["composer-input"].focus();
}

/** Opens a conversation from History read-only; the chat itself is left as it was. */
export async function openReadOnly(summary) {
  if (summary.id === state.sessionId && summary.status === "active") {
    await loadCurrent();
    return;
  }
  const token = ++chat.loadToken;
  leaveConversation();
  chat.viewing = { ...summary };
  showTemporary(false);
  chat.loading = true;
  showError("");
  hideNotice();
  setHeading(summary.title);
  setUsage(null);
  el.messages.replaceChildren();
  const archived = summary.status !== "active";
  el["viewer-text"].textContent =
    summary.status === "trashed"
      ? "Read-only: this conversation is in the trash."
      : archived
        ? `Read-only: this conversation was archived${summary.archivedAt ? ` on ${formatDate(summary.archivedAt)}` : ""}.`
        : "Read-only view of an earlier conversation.";
  el["viewer-continue"].textContent = archived ? "Restore and continue" : "Continue this conversation";
  show(el["viewer-bar"], true);
  el.composer.hidden = true;
  updateComposer();
  updateEmpty();
  try {
    const { conversation, drafts } = await fetchConversation(summary.id);
    if (token !== chat.loadToken) return;
    setHeading(conversation.title);
    setUsage(conversation.usage);
    indexDrafts(drafts);
    renderMessages(conversation.messages, conversation.summarisedThrough);
    el["chat-scroll"].scrollTop = 0;
    resumeActive(summary.id, conversation.activeTurn);
  } catch (err) {
    if (token === chat.loadToken && !(err instanceof ApiError && err.status === 401)) showError(err.message);
  } finally {
    if (token === chat.loadToken) {
      chat.loading = false;
      if (chat.catchUpWanted) catchUp();
    }
  }
  el["viewer-continue"].focus();
}

export function viewedId() {
  return chat.viewing ? chat.viewing.id : null;
}

export async function exitViewer() {
  await loadCurrent();
}

async function continueViewed() {
  if (!chat.viewing) return;
  const summary = chat.viewing;
  if (summary.status === "active") {
    await continueIn(summary.id);
    return;
  }
  await hooks.onRestore(summary.id);
}

/** Makes `id` the conversation the chat continues (after a restore) and shows it. */
export async function continueIn(id, { focus = true } = {}) {
  setSessionId(id);
  hideNotice();
  await loadCurrent();
  if (focus) el["composer-input"].focus();
}

export function forget(id) {
  // Done on this device: the stream's news of it may have come first; it was not "elsewhere".
  if (chat.closed && openConversationId() === id) hideNotice();
  if (state.sessionId === id) setSessionId(null);
  if (chat.viewing && chat.viewing.id === id) chat.viewing = null;
  loadCurrent();
}

export function renamed(id, title) {
  if (state.sessionId === id || (chat.viewing && chat.viewing.id === id)) setHeading(title);
  if (chat.viewing && chat.viewing.id === id) chat.viewing.title = title;
}

// ---- sending ---------------------------------------------------------------------------

/** After a turn: the new messages with their seq and time, and the drafts, from the server. */
async function syncAfterTurn(sessionId, afterSeq) {
  try {
    return await fetchConversation(sessionId, afterSeq);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return null;
  }
}

function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Sends the message and streams the reply. A network retry of the same message sends the
 *  same Idempotency-Key, so the server joins the first attempt instead of starting another. */
function postChat(body, turn) {
  const key = newIdempotencyKey();
  return (lastId) => {
    if (lastId !== null && turn.turnId) return followEvents(turn, lastId);
    return send("POST", "/api/chat", {
      json: body,
      headers: { Accept: STREAM, "Idempotency-Key": key },
      signal: turn.signal,
    });
  };
}

export async function sendMessage(text) {
  if (chat.sending || chat.live || chat.viewing || chat.closed === "deleted") return;
  if (chat.retryUntil > Date.now()) return;
  if (chat.loading) {
    // Typed before the conversation finished loading: this message decides what is shown.
    chat.loadToken++;
    chat.loading = false;
  }
  chat.sending = true;
  showError("");
  const mine = messageItem({ role: "user", content: text }, { pending: true });
  const typing = typingItem();
  el.messages.append(mine, typing);
  updateEmpty();
  scrollToEnd();
  await modelSettled(); // a model just chosen answers this message
  for (const failed of el.messages.querySelectorAll(":scope > .msg-failed")) failed.remove();
  const body = { messages: [{ role: "user", content: text }] };
  // Writing in the conversation shown continues it, even when it was archived meanwhile
  // (here or on another device): the server restores it with this message.
  if (state.sessionId) Object.assign(body, { sessionId: state.sessionId, restore: true });
  if (!state.sessionId && el["temporary-switch"].checked) body.temporary = true;
  const model = state.sessionId ? null : modelForNewConversation();
  if (model) body.model = model;
  const token = chat.loadToken;
  let fresh = !state.sessionId;
  const turn = beginLive({
    sessionId: state.sessionId,
    bubble: typing,
    own: true,
    onStarted(data) {
      if (turn.started) return; // a retry replays the first event again
      turn.started = true;
      const other = Boolean(state.sessionId) && data.sessionId !== state.sessionId;
      fresh = fresh || other || Boolean(data.expiredSessionId);
      if (other && !data.expiredSessionId) {
        el.messages.replaceChildren(mine, typing);
        chat.lastSeq = 0;
        indexDrafts([]);
      }
      if (data.expiredSessionId) {
        showNotice(
          "Your previous conversation expired after a while without messages and was archived. " +
            "This message started a new conversation. The old one is in History under Archived.",
          { linkToArchive: true },
        );
        // Only this turn belongs to the new conversation.
        el.messages.replaceChildren(mine, typing);
        chat.lastSeq = 0;
        chat.closed = null;
        chat.stoppedSeqs = new Set();
        indexDrafts([]);
      }
      if (fresh) {
        setHeading(text);
        setUsage(null);
        // What a notice said was about the conversation shown before this one.
        if (!data.expiredSessionId) hideNotice();
      }
      if (!fresh && chat.closed === "archived") {
        chat.closed = null; // continued: active again
        hideNotice();
        refreshCards();
      }
      setSessionId(data.sessionId);
      if (fresh) showTemporary(Boolean(body.temporary));
      if (fresh) conversationStarted();
      mine.classList.remove("msg-pending"); // the server has it
    },
  });
  let final = null;
  try {
    final = await readTurn(turn, postChat(body, turn));
  } catch (err) {
    if (err.name === "AbortError") return; // the user opened another conversation meanwhile
    typing.remove();
    if (err instanceof ApiError && err.status === 429) {
      mine.remove();
      putBack(text);
      startRetryCountdown(err.retryAfter ?? 60, err.problem);
    } else if (err instanceof ApiError && (err.code === "session_not_found" || err.code === "session_trashed")) {
      // Deleted (or moved to the trash) elsewhere before this message reached it: nothing
      // was saved, and the text goes back in the box for a new conversation.
      mine.remove();
      putBack(text);
      markClosed(state.sessionId, "deleted");
    } else if (err instanceof ApiError && err.code === "turn_in_progress") {
      // Another device is being answered in this conversation: nothing was saved here.
      mine.remove();
      putBack(text);
      showError("A reply is still being written in this conversation. Send again when it is done.");
      chat.catchUpWanted = true;
    } else if (turn.turnId) {
      // The message was kept; only reading the reply failed. The stored messages tell the rest.
      showError(err.message);
      chat.catchUpWanted = true;
    } else {
      mine.remove();
      putBack(text);
      if (!(err instanceof ApiError && err.status === 401)) showError(err.message);
    }
  } finally {
    endLive(turn);
    if (turn.turnId) chat.followed.add(turn.turnId);
    if (!final) finishSending();
  }
  if (!final) return;
  const data = final.data;
  try {
    if (final.event === "error") {
      // The message was kept; only the reply failed. The conversation read below says
      // why, under the message, with Retry.
      typing.remove();
    } else if (data.stopped) {
      chat.stoppedSeqs.add(data.seq);
    }
    const sessionId = data.sessionId || turn.sessionId;
    const synced = await syncAfterTurn(sessionId, fresh ? 0 : chat.lastSeq);
    if (token !== chat.loadToken) return; // the user opened something else meanwhile
    mine.classList.remove("msg-pending");
    if (synced) {
      setHeading(synced.conversation.title);
      setUsage(synced.conversation.usage);
      indexDrafts(synced.drafts);
      const messages = synced.conversation.messages.filter((m) => !shownItem(m.seq));
      // Ours is the message right before the reply: a conversation answers one message at a
      // time, so nothing comes between them. A failed reply has no seq: the stored copy of
      // our message then takes the place of the one shown.
      const ownSeq = final.event === "done" ? data.seq - 1 : null;
      const mineIndex = messages.findIndex((m) => m.seq === ownSeq && m.role === "user");
      const items = messages.map((m, i) => {
        if (i === mineIndex) {
          mine.dataset.seq = m.seq;
          setTime(mine, m.createdAt);
          setActions(mine, m);
          return mine;
        }
        return renderItem(m);
      });
      // Earlier messages of this turn (from another device) go before ours; replies after.
      if (mineIndex === -1) mine.remove();
      if (typing.isConnected) typing.replaceWith(...items.slice(mineIndex + 1));
      else el.messages.append(...items.slice(mineIndex + 1));
      if (mineIndex > 0) mine.before(...items.slice(0, mineIndex));
      chat.lastSeq = synced.conversation.messages.reduce((max, m) => Math.max(max, m.seq), chat.lastSeq);
      refreshCards();
      showFailed(synced.conversation.failedTurn);
    } else if (final.event === "done") {
      typing.replaceWith(markStopped(messageItem({ role: "assistant", content: data.reply, imageUrl: data.imageUrl }), data.seq));
    } else {
      showError(data.detail || data.title || "The assistant could not answer.");
    }
    scrollToEnd();
    hooks.onTurn(data);
  } finally {
    finishSending();
  }
}

/** A new reply to the user message `seq` whose reply failed or was interrupted (Retry):
 *  `POST /api/sessions/{id}/messages/{seq}/regenerate`, streamed like a sent message. The
 *  stored conversation then replaces what was streamed. */
export async function retryReply(seq) {
  const sessionId = state.sessionId;
  if (!sessionId || chat.sending || chat.live || chat.viewing || chat.closed === "deleted") return;
  if (chat.retryUntil > Date.now()) return;
  chat.sending = true;
  showError("");
  for (const failed of el.messages.querySelectorAll(":scope > .msg-failed")) failed.remove();
  const typing = typingItem();
  el.messages.append(typing);
  updateEmpty();
  scrollToEnd();
  const key = newIdempotencyKey();
  const path = `${sessionPath(sessionId)}/messages/${Number(seq)}/regenerate`;
  const turn = beginLive({ sessionId, bubble: typing, own: true });
  let final = null;
  try {
    if (chat.closed === "archived") {
      await send("POST", `${sessionPath(sessionId)}/restore`); // archived: active again first
      chat.closed = null;
      hideNotice();
    }
    final = await readTurn(turn, (lastId) => {
      if (lastId !== null && turn.turnId) return followEvents(turn, lastId);
      return send("POST", path, { json: {}, headers: { Accept: STREAM, "Idempotency-Key": key }, signal: turn.signal });
    });
  } catch (err) {
    if (err.name === "AbortError") return;
    if (err instanceof ApiError && err.status === 429) startRetryCountdown(err.retryAfter ?? 60);
    else if (!(err instanceof ApiError && err.status === 401)) showError(err.message);
  } finally {
    endLive(turn);
    if (turn.turnId) chat.followed.add(turn.turnId);
    if (final?.event === "done" && final.data.stopped) chat.stoppedSeqs.add(final.data.seq);
    if (final?.event !== "done") typing.remove();
    // What was stored (the reply, or why it failed again) replaces what was streamed.
    chat.catchUpWanted = true;
    finishSending();
    hooks.onTurn(final?.data || {});
  }
}

/** A message that was not sent goes back in the box (unless something new was typed). */
function putBack(text) {
  if (!el["composer-input"].value) el["composer-input"].value = text;
  updateCount();
}

function finishSending() {
  chat.sending = false;
  setBusy(false);
  updateComposer();
  updateEmpty();
  refreshQuota();
  if (chat.catchUpWanted) catchUp();
}

export function resetChat() {
  chat.loadToken++;
  leaveConversation();
  chat.viewing = null;
  chat.lastSeq = 0;
  indexDrafts([]);
  el.messages.replaceChildren();
  el.quota.textContent = "";
  showError("");
  hideNotice();
  setHeading("");
  setUsage(null);
}
