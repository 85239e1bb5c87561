// The chat panel: the conversation, the message box, streamed replies, draft cards, quota,
// notices, and what other devices change in the open conversation.

import { ApiError, getJson, send, sendJson } from "./api.js";
import { $, formatDate, formatTime, h, show } from "./dom.js";
import { readEvents } from "./sse.js";
import { setSessionId, state } from "./state.js";

const PHRASES = { post: "post it", regenerate: "regenerate the previous post", cancel: "cancel" };
let platforms = null;
// The server's platform table, rendered into the page (app/assistant/platforms.py).
function platformName(id) {
  platforms ??= JSON.parse(document.getElementById("platforms-data")?.textContent || "[]");
  return platforms.find((p) => p.id === id)?.name;
}
const DRAFT_STATUS = {
  pending: "Waiting for you",
  published: "Posted",
  cancelled: "Cancelled",
  superseded: "Replaced",
};
const CARD_WIDTH = 1200;
const CARD_HEIGHT = 630;
const STREAM = "text/event-stream";
const RECONNECT_TRIES = 6;
// The server sends a heartbeat every 15 s by default: a stream silent for longer is dead.
const SILENCE_MS = 45_000;

const el = {};
let hooks = { onTurn() {}, onOpenHistory() {}, onRestore: async () => {} };
let sending = false;
let retryUntil = 0;
let retryTimer = null;
let viewing = null; // a conversation opened read-only from History
let loadToken = 0;
let lastSeq = 0; // the newest message of the shown conversation
let live = null; // the reply being streamed into the shown conversation (ours or another device's)
let loading = false; // a conversation is being fetched to replace what is shown
let catchUpWanted = false; // something changed while busy: read the conversation again after
let closed = null; // "archived" | "deleted": the shown conversation ended elsewhere
let stoppedSeqs = new Set(); // replies of the shown conversation that were stopped early

export function initChat(callbacks) {
  hooks = { ...hooks, ...callbacks };
  for (const id of [
    "messages", "chat-scroll", "empty-chat", "chat-error", "composer", "composer-input",
    "send", "quota", "chat-heading", "chat-notice", "chat-notice-text", "chat-notice-action",
    "chat-notice-close", "viewer-bar", "viewer-text", "viewer-continue", "viewer-back", "new-chat",
    "stop", "chat-usage",
  ]) {
    el[id] = $(id);
  }
  el.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
  });
  el["composer-input"].addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitComposer();
    }
  });
  el["chat-notice-close"].addEventListener("click", hideNotice);
  el["chat-notice-action"].addEventListener("click", () => hooks.onOpenHistory("archived"));
  el["new-chat"].addEventListener("click", startNewConversation);
  el["viewer-back"].addEventListener("click", () => exitViewer());
  el["viewer-continue"].addEventListener("click", continueViewed);
  el.stop.addEventListener("click", stopReply);
}

function submitComposer() {
  const text = el["composer-input"].value;
  if (!text.trim() || sending || live || viewing || closed === "deleted") return;
  el["composer-input"].value = "";
  sendMessage(text);
}

// ---- rendering -------------------------------------------------------------------------

function messageItem(message, { pending = false } = {}) {
  const mine = message.role === "user";
  const who = mine ? "You" : message.role === "assistant" ? "Assistant" : "System";
  const item = h(
    "li",
    { class: `msg msg-${message.role}${pending ? " msg-pending" : ""}`, dataset: { seq: message.seq ?? "" } },
    h("span", { class: "msg-who", text: who }),
    h("div", { class: "msg-text", dir: "auto", text: message.content }),
  );
  if (message.imageUrl) item.append(imageFor(message.imageUrl, `Image attached by the ${who.toLowerCase()}`));
  if (message.createdAt) {
    item.append(h("time", { class: "msg-time", datetime: message.createdAt, text: formatTime(message.createdAt) }));
  }
  return markStopped(item, message.seq, message.stopped);
}

/** A reply stopped early says so, after its text. */
function markStopped(item, seq, stopped = false) {
  if (stopped) stoppedSeqs.add(seq); // as the server remembers it, after a reload too
  if (!stoppedSeqs.has(seq) || item.classList.contains("msg-stopped")) return item;
  item.classList.add("msg-stopped");
  const time = item.querySelector(":scope > .msg-time");
  const note = h("p", { class: "msg-note", text: "Stopped before the end" });
  if (time) time.before(note);
  else item.append(note);
  return item;
}

function imageFor(url, alt) {
  const img = h("img", { src: url, alt, width: CARD_WIDTH, height: CARD_HEIGHT, loading: "lazy", decoding: "async" });
  img.addEventListener("error", () => {
    img.replaceWith(h("p", { class: "img-missing", text: "The image could not be loaded." }));
  });
  return img;
}

/** The assistant's bubble while a reply streams in: dots until the first words arrive. */
function typingItem() {
  return h(
    "li",
    { class: "msg msg-assistant msg-typing msg-streaming", "aria-label": "The assistant is writing" },
    h("span", { class: "msg-who", text: "Assistant" }),
    h("div", { class: "msg-text", dir: "auto" }, h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i"))),
  );
}

/** Shows the reply so far. Model text only ever goes in as a text node. */
function showPartial(turn) {
  const item = turn.bubble;
  const box = item.querySelector(".msg-text");
  if (!turn.text) {
    if (!item.classList.contains("msg-typing")) {
      item.classList.add("msg-typing");
      item.setAttribute("aria-label", "The assistant is writing");
      box.replaceChildren(h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")));
    }
    return;
  }
  if (item.classList.contains("msg-typing")) {
    item.classList.remove("msg-typing");
    item.removeAttribute("aria-label");
  }
  box.textContent = turn.text;
  scrollToEnd();
}

function updateEmpty() {
  show(el["empty-chat"], el.messages.children.length === 0 && !viewing);
}

function scrollToEnd() {
  const box = el["chat-scroll"];
  box.scrollTop = box.scrollHeight;
}

function renderMessages(messages) {
  lastSeq = messages.reduce((max, m) => Math.max(max, m.seq || 0), 0);
  el.messages.setAttribute("aria-busy", "false");
  el.messages.replaceChildren(...messages.map((m) => renderItem(m)));
  updateEmpty();
  scrollToEnd();
  // Which conversation is shown now (the share button follows it).
  document.dispatchEvent(new CustomEvent("chatkeep:conversation", { detail: { id: openId() } }));
}

function setHeading(text) {
  el["chat-heading"].textContent = text || "New conversation";
}

const count = new Intl.NumberFormat();

/** The conversation's token totals, in the header, only once there are any. */
function setUsage(usage) {
  const total = usage?.totalTokens || 0;
  show(el["chat-usage"], total > 0);
  if (!total) return;
  el["chat-usage"].textContent = `${count.format(total)} ${total === 1 ? "token" : "tokens"}`;
  el["chat-usage"].title =
    `Tokens used in this conversation: ${count.format(usage.promptTokens || 0)} read, ` +
    `${count.format(usage.completionTokens || 0)} written`;
}

// ---- notices and errors ----------------------------------------------------------------

export function showNotice(text, { linkToArchive = false } = {}) {
  el["chat-notice-text"].textContent = text;
  show(el["chat-notice-action"], linkToArchive);
  show(el["chat-notice"], true);
}

function hideNotice() {
  show(el["chat-notice"], false);
}

function showError(text) {
  el["chat-error"].textContent = text || "";
}

function retryText(seconds) {
  if (seconds <= 0) return "You can send again now.";
  const at = new Date(Date.now() + seconds * 1000);
  const when = at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const wait = seconds === 1 ? "1 second" : `${seconds} seconds`;
  return `You're sending messages faster than your plan allows. Please wait ${wait} (until ${when}) and try again.`;
}

function startRetryCountdown(seconds) {
  retryUntil = Date.now() + seconds * 1000;
  window.clearInterval(retryTimer);
  const tick = () => {
    const left = Math.ceil((retryUntil - Date.now()) / 1000);
    if (left <= 0) {
      window.clearInterval(retryTimer);
      retryTimer = null;
      retryUntil = 0;
      showError("");
      el.quota.dataset.limited = "";
      refreshQuota();
      updateComposer();
      return;
    }
    showError(retryText(left));
  };
  tick();
  retryTimer = window.setInterval(tick, 1000);
  updateComposer();
}

function updateComposer() {
  const deleted = closed === "deleted";
  const blocked = sending || Boolean(live) || retryUntil > Date.now() || Boolean(viewing) || deleted;
  el.send.disabled = blocked;
  el["composer-input"].disabled = Boolean(viewing) || deleted;
  // While a reply is written, Stop takes the place of Send.
  const stoppable = Boolean(live) && !viewing;
  show(el.stop, stoppable);
  show(el.send, !stoppable);
  if (!stoppable) {
    el.stop.disabled = false;
    el.stop.textContent = "Stop";
  }
  for (const button of el.messages.querySelectorAll("button[data-say]")) button.disabled = blocked;
}

// ---- quota -----------------------------------------------------------------------------

function periodOf(policy) {
  const seconds = Number(policy.windowSeconds ?? policy.window ?? policy.periodSeconds ?? 0);
  const name = String(policy.name || "").toLowerCase();
  if (seconds === 60 || /minute|per_min|\bmin\b/.test(name)) return "this minute";
  if (seconds === 3600 || /hour/.test(name)) return "this hour";
  if (seconds === 86400 || /day|daily/.test(name)) return "today";
  if (seconds > 0) return `in the next ${seconds} seconds`;
  return "for now";
}

let quotaToken = 0;

export async function refreshQuota() {
  if (!state.user) return;
  const token = ++quotaToken;
  try {
    const data = await getJson("/api/me/limits");
    if (token !== quotaToken) return; // a newer answer is on its way
    const policies = (data.policies || []).filter((p) => typeof p.remaining === "number");
    if (!policies.length) {
      el.quota.textContent = "";
      return;
    }
    const chat = policies.filter((p) => /chat|message/i.test(`${p.name} ${p.scope ?? ""}`));
    const shown = (chat.length ? chat : policies).slice().sort((a, b) => a.remaining - b.remaining).slice(0, 2);
    el.quota.textContent = shown
      .map((p) => `${p.remaining} ${p.remaining === 1 ? "message" : "messages"} left ${periodOf(p)}`)
      .join(" · ");
  } catch (err) {
    if (token !== quotaToken || !(err instanceof ApiError) || err.status === 401) return;
    el.quota.textContent = ""; // limits not offered by this server
  }
}

// ---- drafts ----------------------------------------------------------------------------
// A draft's versions each answer one user message; the assistant's reply right after it is
// shown as a card (text, image, status) instead of a plain bubble. Only the newest draft's
// newest version has buttons.

let draftIndex = new Map(); // reply seq -> { draft, version }
let latestDraft = null;

function draftsFrom(data) {
  if (Array.isArray(data)) return data;
  return data?.drafts || data?.items || [];
}

function indexDrafts(drafts) {
  draftIndex = new Map();
  latestDraft = null;
  for (const draft of drafts) {
    for (const version of draft.versions || []) {
      if (typeof version.sourceMessageSeq === "number") draftIndex.set(version.sourceMessageSeq + 1, { draft, version });
    }
    if (!latestDraft || String(draft.createdAt) >= String(latestDraft.createdAt)) latestDraft = draft;
  }
}

async function fetchDrafts(sessionId) {
  try {
    return draftsFrom(await getJson(`/api/sessions/${encodeURIComponent(sessionId)}/drafts`));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return []; // no drafts to show; the conversation itself still shows
  }
}

function isCurrent(draft, version) {
  return latestDraft && draft.id === latestDraft.id && version.version === draft.currentVersion;
}

/** The shown conversation can no longer go on: its drafts can no longer be posted from it. */
function ended() {
  return Boolean(closed) || Boolean(viewing && viewing.status !== "active");
}

function cardState(draft, version) {
  if (version.version !== draft.currentVersion) return { status: "earlier", label: "Earlier version" };
  const status = draft.status || "pending";
  if (status === "pending" && ended()) return { status: "archived", label: closed === "deleted" ? "Deleted, not posted" : "Archived, not posted" };
  return { status, label: DRAFT_STATUS[status] || status };
}

function cardActions(draft, version) {
  const actions = [];
  if (!isCurrent(draft, version) || viewing || ended()) return actions;
  const say = (label, phrase, cls) =>
    h("button", { type: "button", class: cls, dataset: { say: phrase }, text: label, onclick: () => sendMessage(phrase) });
  if (draft.status === "pending") {
    actions.push(
      say("Post", PHRASES.post, "btn btn-primary"),
      say("Regenerate", PHRASES.regenerate, "btn"),
      say("Cancel", PHRASES.cancel, "btn btn-quiet"),
    );
  } else if (draft.status === "published" || draft.status === "cancelled") {
    actions.push(say("Regenerate", PHRASES.regenerate, "btn"));
  }
  return actions;
}

function draftItem(message, { draft, version }) {
  const platform = platformName(draft.platform) || draft.platform || "Social";
  const { status, label } = cardState(draft, version);
  const titleId = `draft-${draft.id}-v${version.version}`;
  const card = h(
    "article",
    { class: `draft-card draft-${status}`, "aria-labelledby": titleId },
    h(
      "header",
      { class: "draft-head" },
      h("h3", { id: titleId, text: `${platform} post · ${draft.topic || "draft"}` }),
      h("span", { class: `badge badge-${status}`, text: label }),
    ),
  );
  const url = version.imageUrl || message.imageUrl;
  if (url) card.append(imageFor(url, `Image for the ${platform} post about ${draft.topic || "this topic"}`));
  card.append(h("div", { class: "draft-text", dir: "auto", text: version.text || message.content }));
  card.append(h("p", { class: "draft-meta", text: `Version ${version.version}` }));
  const actions = cardActions(draft, version);
  card.append(h("div", { class: "draft-actions" }, actions));
  const item = h(
    "li",
    { class: "msg msg-assistant msg-draft", dataset: { seq: message.seq, draft: draft.id, version: version.version } },
    h("span", { class: "msg-who", text: "Assistant" }),
    card,
  );
  if (message.createdAt) item.append(h("time", { class: "msg-time", datetime: message.createdAt, text: formatTime(message.createdAt) }));
  return markStopped(item, message.seq, message.stopped);
}

/** Brings cards already on screen up to date (status, buttons) without re-adding them. */
function refreshCards() {
  for (const item of el.messages.querySelectorAll("li.msg-draft")) {
    const entry = draftIndex.get(Number(item.dataset.seq));
    if (!entry) continue;
    const { status, label } = cardState(entry.draft, entry.version);
    const card = item.querySelector(".draft-card");
    card.className = `draft-card draft-${status}`;
    const badge = card.querySelector(".badge");
    badge.className = `badge badge-${status}`;
    badge.textContent = label;
    card.querySelector(".draft-actions").replaceChildren(...cardActions(entry.draft, entry.version));
  }
  updateComposer();
}

function renderItem(message) {
  const entry = message.role === "assistant" && draftIndex.get(message.seq);
  return entry ? draftItem(message, entry) : messageItem(message);
}

// ---- loading conversations -------------------------------------------------------------

const sessionPath = (id) => `/api/sessions/${encodeURIComponent(id)}`;

async function fetchMessages(id, afterSeq = 0) {
  const url = sessionPath(id);
  const first = await getJson(afterSeq ? `${url}?after_seq=${afterSeq}` : url);
  const messages = [...(first.messages || [])];
  let after = first.nextAfterSeq;
  while (after !== null && after !== undefined) {
    const page = await getJson(`${url}?after_seq=${after}`);
    messages.push(...(page.messages || []));
    if (page.nextAfterSeq === after) break;
    after = page.nextAfterSeq;
  }
  return { ...first, messages };
}

async function fetchConversation(id) {
  const [conversation, drafts] = await Promise.all([fetchMessages(id), fetchDrafts(id)]);
  return { conversation, drafts };
}

/** Forgets what was shown of the previous conversation (a stream into it stops being read). */
function leaveConversation() {
  stopFollowing();
  closed = null;
  stoppedSeqs = new Set();
  catchUpWanted = false;
}

function clearConversation() {
  setHeading("");
  setUsage(null);
  indexDrafts([]);
  renderMessages([]);
}

/** The open conversation: the one read-only in view, else the one the chat continues. */
function openId() {
  return viewing ? viewing.id : state.sessionId;
}

export const openConversationId = openId;

/** On a device that never chose a conversation, the most recent active one. */
async function mostRecentActive() {
  try {
    const page = await getJson("/api/sessions?status=active&limit=1");
    return page.items?.[0]?.id || null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return null;
  }
}

/** Shows the conversation the chat continues (from localStorage), if it still exists. */
export async function loadCurrent() {
  const token = ++loadToken;
  leaveConversation();
  viewing = null;
  loading = true;
  show(el["viewer-bar"], false);
  el.composer.hidden = false;
  showError("");
  try {
    if (!state.sessionId && !state.chosen) {
      const recent = await mostRecentActive();
      if (token !== loadToken) return;
      if (recent) setSessionId(recent);
    }
    const id = state.sessionId;
    if (!id) {
      clearConversation();
      return;
    }
    const { conversation, drafts } = await fetchConversation(id);
    if (token !== loadToken) return;
    if (conversation.status !== "active") {
      setSessionId(null);
      clearConversation();
      showNotice(
        `Your previous conversation “${conversation.title}” expired and was archived. ` +
          "It is in History under Archived; restore it there to continue it. A new message starts a new conversation.",
        { linkToArchive: true },
      );
    } else {
      setHeading(conversation.title);
      setUsage(conversation.usage);
      indexDrafts(drafts);
      renderMessages(conversation.messages);
      resumeActive(id, conversation.activeTurn);
    }
  } catch (err) {
    if (token !== loadToken) return;
    if (err instanceof ApiError && err.status === 404) {
      setSessionId(null);
      clearConversation();
    } else if (!(err instanceof ApiError && err.status === 401)) {
      showError(err.message);
    }
  } finally {
    if (token === loadToken) {
      loading = false;
      updateComposer();
      if (catchUpWanted) catchUp();
    }
  }
}

export function startNewConversation() {
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
  const token = ++loadToken;
  leaveConversation();
  viewing = { ...summary };
  loading = true;
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
    if (token !== loadToken) return;
    setHeading(conversation.title);
    setUsage(conversation.usage);
    indexDrafts(drafts);
    renderMessages(conversation.messages);
    el["chat-scroll"].scrollTop = 0;
    resumeActive(summary.id, conversation.activeTurn);
  } catch (err) {
    if (token === loadToken && !(err instanceof ApiError && err.status === 401)) showError(err.message);
  } finally {
    if (token === loadToken) {
      loading = false;
      if (catchUpWanted) catchUp();
    }
  }
  el["viewer-continue"].focus();
}

export function viewedId() {
  return viewing ? viewing.id : null;
}

export async function exitViewer() {
  await loadCurrent();
}

async function continueViewed() {
  if (!viewing) return;
  const summary = viewing;
  if (summary.status === "active") {
    await continueIn(summary.id);
    return;
  }
  await hooks.onRestore(summary.id);
}

/** Makes `id` the conversation the chat continues (after a restore) and shows it. */
export async function continueIn(id) {
  setSessionId(id);
  hideNotice();
  await loadCurrent();
  el["composer-input"].focus();
}

export function forget(id) {
  // Done on this device: the stream's news of it may have come first; it was not "elsewhere".
  if (closed && openId() === id) hideNotice();
  if (state.sessionId === id) setSessionId(null);
  if (viewing && viewing.id === id) viewing = null;
  loadCurrent();
}

/** Scrolls to the message `seq` of the open conversation and marks it for a moment (a
 *  search result opened here), with `words` marked in its text. */
export function revealMessage(seq, words = []) {
  const item = el.messages.querySelector(`:scope > li[data-seq="${Number(seq)}"]`);
  if (!item) return false;
  const box = item.querySelector(".msg-text, .draft-text");
  if (box && words.length) markWords(box, words);
  item.classList.remove("msg-found");
  void item.offsetWidth; // restart the highlight when the same message is found again
  item.classList.add("msg-found");
  item.tabIndex = -1;
  item.scrollIntoView({ block: "center" });
  item.focus({ preventScroll: true });
  item.addEventListener("blur", () => item.removeAttribute("tabindex"), { once: true });
  return true;
}

/** Puts <mark>s around every occurrence of one of `words` in the element's text. */
function markWords(box, words) {
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const finder = new RegExp(`(${escaped.join("|")})`, "giu");
  const text = box.textContent;
  const parts = text.split(finder);
  if (parts.length < 2) return;
  box.replaceChildren(...parts.map((part, i) => (i % 2 ? h("mark", { text: part }) : part)));
}

export function renamed(id, title) {
  if (state.sessionId === id || (viewing && viewing.id === id)) setHeading(title);
  if (viewing && viewing.id === id) viewing.title = title;
}

// ---- following a reply as it is written --------------------------------------------------
// A reply is a stream of events: `turn` first, `delta`s that add up to the text, then `done`
// or `error`. Every event has an id; after a dropped connection the turn's events endpoint
// sends what came after the last id seen.

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        window.clearTimeout(timer);
        reject(new DOMException("Stopped following", "AbortError"));
      },
      { once: true },
    );
  });
}

function turnPath(turn) {
  return `${sessionPath(turn.sessionId)}/turns/${encodeURIComponent(turn.turnId)}`;
}

/** Opens the turn's events after `lastId` (all of them when null). */
function followEvents(turn, lastId) {
  const headers = { Accept: STREAM };
  if (lastId !== null) headers["Last-Event-ID"] = lastId;
  return send("GET", `${turnPath(turn)}/events`, { headers, signal: turn.signal });
}

function beginLive(turn) {
  live = { text: "", stopping: false, abort: new AbortController(), ...turn };
  el.messages.setAttribute("aria-busy", "true"); // the log speaks the reply once, when done
  updateComposer();
  return live;
}

function endLive(turn) {
  if (live === turn) live = null;
  el.messages.setAttribute("aria-busy", "false");
  updateComposer();
}

function stopFollowing() {
  if (!live) return;
  live.abort.abort();
  live.bubble.remove();
  endLive(live);
}

/** Reads the turn's events until `done` or `error`, reconnecting after a dropped connection.
 *  `connect(lastId)` opens the stream. Returns the last event. */
async function readTurn(turn, connect) {
  let lastId = null;
  let failures = 0;
  for (;;) {
    // One connection: given up when the turn is no longer shown, or when it falls silent.
    const attempt = new AbortController();
    const giveUp = () => attempt.abort();
    turn.abort.signal.addEventListener("abort", giveUp, { once: true });
    turn.signal = attempt.signal;
    let watchdog = window.setTimeout(giveUp, SILENCE_MS);
    const alive = () => {
      window.clearTimeout(watchdog);
      watchdog = window.setTimeout(giveUp, SILENCE_MS);
    };
    try {
      const final = await readConnection(turn, connect, lastId, alive, (id) => {
        lastId = id;
        failures = 0;
      });
      if (final) return final;
    } finally {
      window.clearTimeout(watchdog);
      turn.abort.signal.removeEventListener("abort", giveUp);
    }
    if (turn.abort.signal.aborted) throw new DOMException("Stopped following", "AbortError");
    failures += 1;
    if (failures > RECONNECT_TRIES) {
      throw new ApiError(0, { title: "Offline", detail: "The connection to the server was lost. Check your connection and reload the page." }, null);
    }
    await sleep(Math.min(8000, 500 * 2 ** (failures - 1)), turn.abort.signal);
  }
}

/** Reads one connection's events. Returns the final event, or null when the connection
 *  ended (or was never made) before it: the caller then tries again. */
async function readConnection(turn, connect, lastId, alive, seen) {
  let response = null;
  try {
    response = await connect(lastId);
  } catch (err) {
    if (turn.abort.signal.aborted) throw err;
    if (err.name === "AbortError") return null; // fell silent while connecting
    if (!(err instanceof ApiError) || err.status !== 0) throw err;
    return null;
  }
  if (!(response.headers.get("content-type") || "").includes(STREAM)) {
    // A server that answers JSON (the whole reply at once) instead of a stream.
    const data = await response.json();
    onTurnStarted(turn, { sessionId: data.sessionId, turnId: null, expiredSessionId: data.expiredSessionId });
    return { event: "done", data: { ...data, stopped: false }, id: null };
  }
  try {
    for await (const event of readEvents(response, alive)) {
      if (event.id !== null) seen(event.id);
      if (event.event === "turn") {
        turn.text = ""; // the first event of a full replay
        onTurnStarted(turn, event.data);
      } else if (event.event === "delta") {
        turn.text += event.data?.text ?? "";
        showPartial(turn);
      } else if (event.event === "done" || event.event === "error") {
        return event;
      }
    }
  } catch (err) {
    if (turn.abort.signal.aborted) throw err;
    /* the connection dropped or fell silent: go on from the last event seen */
  }
  return null;
}

function onTurnStarted(turn, data) {
  if (!data) return;
  turn.turnId = data.turnId;
  turn.sessionId = data.sessionId;
  if (turn.onStarted) turn.onStarted(data);
  if (turn.stopWanted) stopReply();
}

/** The Stop button: asks the server to stop the model; the stream then ends with `done`. */
async function stopReply() {
  const turn = live;
  if (!turn || turn.stopping) return;
  el.stop.disabled = true;
  el.stop.textContent = "Stopping…";
  if (!turn.turnId) {
    turn.stopWanted = true; // the turn's id is on its way
    return;
  }
  turn.stopping = true;
  try {
    await sendJson("POST", `${turnPath(turn)}/cancel`);
  } catch (err) {
    turn.stopping = false;
    if (live === turn) {
      el.stop.disabled = false;
      el.stop.textContent = "Stop";
    }
    if (!(err instanceof ApiError && err.status === 401)) showError(err.message);
  }
}

/** A reply is still being written in the open conversation (another device, or before a
 *  reload): show it as it grows, then the stored messages. */
const followed = new Set(); // turns whose stream already ended here: never followed twice

function resumeActive(sessionId, activeTurn) {
  if (!activeTurn || activeTurn.status !== "generating" || live || sending) return;
  if (openId() !== sessionId || followed.has(activeTurn.turnId) || closed === "deleted") return;
  followTurn(sessionId, activeTurn.turnId);
}

async function followTurn(sessionId, turnId) {
  const token = loadToken;
  const bubble = typingItem();
  el.messages.append(bubble);
  updateEmpty();
  scrollToEnd();
  const turn = beginLive({ sessionId, turnId, bubble, own: false });
  let final = null;
  try {
    final = await readTurn(turn, (lastId) => followEvents(turn, lastId));
  } catch (err) {
    if (err.name === "AbortError") return;
    if (token === loadToken && !(err instanceof ApiError && (err.status === 401 || err.status === 404))) showError(err.message);
  } finally {
    endLive(turn);
  }
  followed.add(turnId);
  if (token !== loadToken) return;
  if (final?.event === "error") bubble.remove();
  if (final?.event === "done" && final.data?.stopped && typeof final.data.seq === "number") stoppedSeqs.add(final.data.seq);
  if (final?.event === "error") showError(final.data?.detail || final.data?.title || "The reply failed.");
  await catchUp();
}

// ---- what other devices change ---------------------------------------------------------

let catchUpChain = Promise.resolve();

/** Reads what is new in the open conversation (messages after the last shown, drafts,
 *  title, usage) and shows it; follows a reply still being written there. One at a time. */
export function catchUp() {
  catchUpChain = catchUpChain.then(readNew, readNew);
  return catchUpChain;
}

async function readNew() {
  const id = openId();
  if (!id || !state.user) return;
  if (sending || live || loading) {
    catchUpWanted = true; // done when the turn or load in progress ends
    return;
  }
  catchUpWanted = false;
  const token = loadToken;
  const after = lastSeq;
  let conversation;
  let drafts;
  try {
    [conversation, drafts] = await Promise.all([fetchMessages(id, after), fetchDrafts(id)]);
  } catch (err) {
    if (token === loadToken && err instanceof ApiError && err.status === 404) markClosed(id, "deleted");
    return;
  }
  if (token !== loadToken || openId() !== id || sending || live) {
    if (token === loadToken) catchUpWanted = true;
    return;
  }
  setHeading(conversation.title);
  setUsage(conversation.usage);
  indexDrafts(drafts);
  const fresh = conversation.messages.filter(
    (m) => m.seq > lastSeq && !el.messages.querySelector(`:scope > li[data-seq="${m.seq}"]`),
  );
  // A finished reply's streamed bubble gives way to the stored message.
  if (fresh.length) for (const bubble of el.messages.querySelectorAll(":scope > .msg-streaming")) bubble.remove();
  el.messages.append(...fresh.map((m) => renderItem(m)));
  lastSeq = conversation.messages.reduce((max, m) => Math.max(max, m.seq), lastSeq);
  refreshCards();
  updateEmpty();
  if (fresh.length) scrollToEnd();
  if (conversation.status !== "active" && !viewing && id === state.sessionId) markClosed(id, "archived");
  resumeActive(id, conversation.activeTurn);
}

/** An event from /api/events (this user's, from any device). */
export function liveEvent(kind, data) {
  if (!data || !state.user) return;
  if (kind === "resync") {
    catchUp();
    return;
  }
  if (data.sessionId !== openId()) return;
  if (kind === "message" || kind === "turn") {
    catchUp();
  } else if (kind === "session") {
    if (data.change === "deleted" || data.change === "trashed") markClosed(data.sessionId, "deleted");
    else if (data.change === "archived") markClosed(data.sessionId, "archived");
    else catchUp();
  }
}

/** The open conversation was archived (it expired) or deleted, here or on another device. */
function markClosed(id, how) {
  if (openId() !== id || closed === how || (closed === "deleted" && how === "archived")) return;
  if (how === "archived" && viewing) {
    viewing.status = "archived"; // a read-only view stays one
    refreshCards();
    return;
  }
  closed = how;
  if (how === "deleted") {
    // The id stays until the user starts anew: a reload then finds it gone (404) and starts
    // fresh, and a deletion made on this device clears the view through forget().
    stopFollowing();
    showNotice("This conversation was deleted on another device. Start a new conversation to go on.");
  } else {
    showNotice(
      "This conversation expired after a while without messages and was archived. " +
        "Its drafts can no longer be posted from here. It is in History under Archived; a new message starts a new conversation.",
      { linkToArchive: true },
    );
  }
  refreshCards();
}

// ---- sending ---------------------------------------------------------------------------

/** After a turn: the new messages with their seq and time, and the drafts, from the server. */
async function syncAfterTurn(sessionId, afterSeq) {
  try {
    const [conversation, drafts] = await Promise.all([fetchMessages(sessionId, afterSeq), fetchDrafts(sessionId)]);
    return { conversation, drafts };
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
  if (sending || live || viewing || closed === "deleted") return;
  if (retryUntil > Date.now()) return;
  if (loading) {
    // Typed before the conversation finished loading: this message decides what is shown.
    loadToken++;
    loading = false;
  }
  sending = true;
  showError("");
  const mine = messageItem({ role: "user", content: text }, { pending: true });
  const typing = typingItem();
  el.messages.append(mine, typing);
  updateEmpty();
  scrollToEnd();
  const body = { messages: [{ role: "user", content: text }] };
  if (state.sessionId) body.sessionId = state.sessionId;
  const token = loadToken;
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
        lastSeq = 0;
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
        lastSeq = 0;
        closed = null;
        stoppedSeqs = new Set();
        indexDrafts([]);
      }
      if (fresh) {
        setHeading(text);
        setUsage(null);
      }
      setSessionId(data.sessionId);
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
      if (!el["composer-input"].value) el["composer-input"].value = text;
      el.quota.dataset.limited = "true";
      startRetryCountdown(err.retryAfter ?? 60);
    } else if (err instanceof ApiError && err.code === "turn_in_progress") {
      // Another device is being answered in this conversation: nothing was saved here.
      mine.remove();
      if (!el["composer-input"].value) el["composer-input"].value = text;
      showError("A reply is still being written in this conversation. Send again when it is done.");
      catchUpWanted = true;
    } else if (turn.turnId) {
      // The message was kept; only reading the reply failed. The stored messages tell the rest.
      showError(err.message);
      catchUpWanted = true;
    } else {
      mine.remove();
      if (!el["composer-input"].value) el["composer-input"].value = text;
      if (!(err instanceof ApiError && err.status === 401)) showError(err.message);
    }
  } finally {
    endLive(turn);
    if (turn.turnId) followed.add(turn.turnId);
    if (!final) finishSending();
  }
  if (!final) return;
  const data = final.data || {};
  try {
    if (final.event === "error") {
      // The message was kept; only the reply failed.
      typing.remove();
      showError(data.detail || data.title || "The assistant could not answer.");
    } else if (data.stopped && typeof data.seq === "number") {
      stoppedSeqs.add(data.seq);
    }
    const sessionId = data.sessionId || turn.sessionId;
    const synced = await syncAfterTurn(sessionId, fresh ? 0 : lastSeq);
    if (token !== loadToken) return; // the user opened something else meanwhile
    mine.classList.remove("msg-pending");
    if (synced) {
      setHeading(synced.conversation.title);
      setUsage(synced.conversation.usage);
      indexDrafts(synced.drafts);
      const known = (m) => el.messages.querySelector(`:scope > li[data-seq="${m.seq}"]`);
      const messages = synced.conversation.messages.filter((m) => !known(m));
      const mineIndex = messages.findIndex((m) => m.role === "user" && m.content === text);
      const items = messages.map((m, i) => {
        if (i === mineIndex) {
          mine.dataset.seq = m.seq;
          mine.append(h("time", { class: "msg-time", datetime: m.createdAt, text: formatTime(m.createdAt) }));
          return mine;
        }
        return renderItem(m);
      });
      // Earlier messages of this turn (from another device) go before ours; replies after.
      if (mineIndex === -1) mine.remove();
      if (typing.isConnected) typing.replaceWith(...items.slice(mineIndex + 1));
      else el.messages.append(...items.slice(mineIndex + 1));
      if (mineIndex > 0) mine.before(...items.slice(0, mineIndex));
      lastSeq = synced.conversation.messages.reduce((max, m) => Math.max(max, m.seq), lastSeq);
      refreshCards();
    } else if (final.event === "done") {
      typing.replaceWith(markStopped(messageItem({ role: "assistant", content: data.reply, imageUrl: data.imageUrl }), data.seq));
    }
    scrollToEnd();
    hooks.onTurn(data);
  } finally {
    finishSending();
  }
}

function finishSending() {
  sending = false;
  el.messages.setAttribute("aria-busy", "false");
  updateComposer();
  updateEmpty();
  refreshQuota();
  if (catchUpWanted) catchUp();
}

export function resetChat() {
  loadToken++;
  leaveConversation();
  viewing = null;
  lastSeq = 0;
  indexDrafts([]);
  el.messages.replaceChildren();
  el.quota.textContent = "";
  showError("");
  hideNotice();
  setHeading("");
  setUsage(null);
}
