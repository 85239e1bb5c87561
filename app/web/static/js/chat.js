// The chat panel: the conversation, the message box, draft cards, quota and notices.

import { ApiError, getJson, sendJson } from "./api.js";
import { $, formatDate, formatTime, h, show } from "./dom.js";
import { setSessionId, state } from "./state.js";

const PHRASES = { post: "post it", regenerate: "regenerate the previous post", cancel: "cancel" };
const PLATFORM_NAMES = {
  facebook: "Facebook",
  instagram: "Instagram",
  linkedin: "LinkedIn",
  x: "X",
  threads: "Threads",
  mastodon: "Mastodon",
};
const DRAFT_STATUS = {
  pending: "Waiting for you",
  published: "Posted",
  cancelled: "Cancelled",
  superseded: "Replaced",
};
const CARD_WIDTH = 1200;
const CARD_HEIGHT = 630;

const el = {};
let hooks = { onTurn() {}, onOpenHistory() {}, onRestore: async () => {} };
let sending = false;
let retryUntil = 0;
let retryTimer = null;
let viewing = null; // a conversation opened read-only from History
let loadToken = 0;
let lastSeq = 0; // the newest message of the shown conversation

export function initChat(callbacks) {
  hooks = { ...hooks, ...callbacks };
  for (const id of [
    "messages", "chat-scroll", "empty-chat", "chat-error", "composer", "composer-input",
    "send", "quota", "chat-heading", "chat-notice", "chat-notice-text", "chat-notice-action",
    "chat-notice-close", "viewer-bar", "viewer-text", "viewer-continue", "viewer-back", "new-chat",
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
}

function submitComposer() {
  const text = el["composer-input"].value;
  if (!text.trim() || sending || viewing) return;
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
    h("div", { class: "msg-text", text: message.content }),
  );
  if (message.imageUrl) item.append(imageFor(message.imageUrl, `Image attached by the ${who.toLowerCase()}`));
  if (message.createdAt) {
    item.append(h("time", { class: "msg-time", datetime: message.createdAt, text: formatTime(message.createdAt) }));
  }
  return item;
}

function imageFor(url, alt) {
  const img = h("img", { src: url, alt, width: CARD_WIDTH, height: CARD_HEIGHT, loading: "lazy", decoding: "async" });
  img.addEventListener("error", () => {
    img.replaceWith(h("p", { class: "img-missing", text: "The image could not be loaded." }));
  });
  return img;
}

function typingItem() {
  return h(
    "li",
    { class: "msg msg-assistant msg-typing", "aria-label": "The assistant is writing" },
    h("span", { class: "msg-who", text: "Assistant" }),
    h("div", { class: "msg-text" }, h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i"))),
  );
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
  el.messages.replaceChildren(...messages.map((m) => renderItem(m)));
  updateEmpty();
  scrollToEnd();
}

function setHeading(text) {
  el["chat-heading"].textContent = text || "New conversation";
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
  const blocked = sending || retryUntil > Date.now() || Boolean(viewing);
  el.send.disabled = blocked;
  el["composer-input"].disabled = Boolean(viewing);
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

function cardState(draft, version) {
  if (version.version !== draft.currentVersion) return { status: "earlier", label: "Earlier version" };
  const status = draft.status || "pending";
  return { status, label: DRAFT_STATUS[status] || status };
}

function cardActions(draft, version) {
  const actions = [];
  if (!isCurrent(draft, version) || viewing) return actions;
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
  const platform = PLATFORM_NAMES[draft.platform] || draft.platform || "Social";
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
  card.append(h("div", { class: "draft-text", text: version.text || message.content }));
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
  return item;
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

async function fetchMessages(id, afterSeq = 0) {
  const url = `/api/sessions/${encodeURIComponent(id)}`;
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

function clearConversation() {
  setHeading("");
  indexDrafts([]);
  renderMessages([]);
}

/** Shows the conversation the chat continues (from localStorage), if it still exists. */
export async function loadCurrent() {
  const token = ++loadToken;
  viewing = null;
  show(el["viewer-bar"], false);
  el.composer.hidden = false;
  showError("");
  const id = state.sessionId;
  if (!id) {
    clearConversation();
    updateComposer();
    return;
  }
  try {
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
      indexDrafts(drafts);
      renderMessages(conversation.messages);
    }
  } catch (err) {
    if (token !== loadToken) return;
    if (err instanceof ApiError && err.status === 404) {
      setSessionId(null);
      clearConversation();
    } else if (!(err instanceof ApiError && err.status === 401)) {
      showError(err.message);
    }
  }
  updateComposer();
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
  viewing = { ...summary };
  showError("");
  hideNotice();
  setHeading(summary.title);
  el.messages.replaceChildren();
  const archived = summary.status !== "active";
  el["viewer-text"].textContent = archived
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
    indexDrafts(drafts);
    renderMessages(conversation.messages);
    el["chat-scroll"].scrollTop = 0;
  } catch (err) {
    if (token === loadToken && !(err instanceof ApiError && err.status === 401)) showError(err.message);
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
  if (state.sessionId === id) setSessionId(null);
  if (viewing && viewing.id === id) viewing = null;
  loadCurrent();
}

export function renamed(id, title) {
  if (state.sessionId === id || (viewing && viewing.id === id)) setHeading(title);
  if (viewing && viewing.id === id) viewing.title = title;
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

export async function sendMessage(text) {
  if (sending || viewing) return;
  if (retryUntil > Date.now()) return;
  sending = true;
  showError("");
  updateComposer();
  const mine = messageItem({ role: "user", content: text }, { pending: true });
  const typing = typingItem();
  el.messages.append(mine, typing);
  updateEmpty();
  scrollToEnd();
  const body = { messages: [{ role: "user", content: text }] };
  if (state.sessionId) body.sessionId = state.sessionId;
  const token = loadToken;
  try {
    const data = await sendJson("POST", "/api/chat", body);
    const fresh = data.sessionId !== state.sessionId || Boolean(data.expiredSessionId);
    if (data.expiredSessionId) {
      showNotice(
        "Your previous conversation expired after a while without messages and was archived. " +
          "This message started a new conversation. The old one is in History under Archived.",
        { linkToArchive: true },
      );
      // Only this turn belongs to the new conversation.
      el.messages.replaceChildren(mine, typing);
    }
    setSessionId(data.sessionId);
    const synced = await syncAfterTurn(data.sessionId, fresh ? 0 : lastSeq);
    if (token !== loadToken) return; // the user opened something else meanwhile
    mine.classList.remove("msg-pending");
    if (synced) {
      setHeading(synced.conversation.title);
      indexDrafts(synced.drafts);
      const mineIndex = synced.conversation.messages.findIndex((m) => m.role === "user" && m.content === text);
      const items = synced.conversation.messages.map((m, i) => {
        if (i === mineIndex) {
          mine.dataset.seq = m.seq;
          mine.append(h("time", { class: "msg-time", datetime: m.createdAt, text: formatTime(m.createdAt) }));
          return mine;
        }
        return renderItem(m);
      });
      // Earlier messages of this turn (from another device) go before ours; replies after.
      if (mineIndex === -1) mine.remove();
      typing.replaceWith(...items.slice(mineIndex + 1));
      if (mineIndex > 0) mine.before(...items.slice(0, mineIndex));
      lastSeq = synced.conversation.messages.reduce((max, m) => Math.max(max, m.seq), lastSeq);
      refreshCards();
    } else {
      typing.replaceWith(messageItem({ role: "assistant", content: data.reply, imageUrl: data.imageUrl }));
      if (fresh) setHeading(text);
    }
    scrollToEnd();
    hooks.onTurn(data);
  } catch (err) {
    typing.remove();
    if (err instanceof ApiError && err.status === 429) {
      mine.remove();
      if (!el["composer-input"].value) el["composer-input"].value = text;
      el.quota.dataset.limited = "true";
      startRetryCountdown(err.retryAfter ?? 60);
    } else if (err instanceof ApiError && err.problem && err.problem.sessionId) {
      // The message was kept; only the reply failed.
      mine.classList.remove("msg-pending");
      setSessionId(err.problem.sessionId);
      showError(err.message);
      hooks.onTurn({ sessionId: err.problem.sessionId });
    } else {
      mine.remove();
      if (!el["composer-input"].value) el["composer-input"].value = text;
      if (!(err instanceof ApiError && err.status === 401)) showError(err.message);
    }
  } finally {
    sending = false;
    updateComposer();
    updateEmpty();
    refreshQuota();
  }
}

export function resetChat() {
  loadToken++;
  viewing = null;
  lastSeq = 0;
  indexDrafts([]);
  el.messages.replaceChildren();
  el.quota.textContent = "";
  showError("");
  hideNotice();
  setHeading("");
}
