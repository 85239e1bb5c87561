// Draft cards. A draft's versions each answer one user message; the assistant's reply right
// after it is shown as a card (text, image, status) instead of a plain bubble. Only the
// newest draft's newest version has buttons; they say a phrase in the conversation (the
// chat sends a button's `data-say`).

import { h } from "./dom.js";
import { el, imageFor, markStopped, messageItem, timeOf, updateComposer } from "./chat-panel.js";
import { switcher } from "./message-actions.js";
import { state } from "./state.js";

const PHRASES = { post: "post it", regenerate: "regenerate the previous post", cancel: "cancel" };
// The server's platform table, rendered into the page (app/assistant/platforms.py). Module
// scripts run after the document is parsed, so the element is there.
const PLATFORM_NAMES = Object.fromEntries(
  JSON.parse(document.getElementById("platforms-data")?.textContent || "[]").map((p) => [
    p.id,
    p.name,
  ]),
);
const DRAFT_STATUS = {
  pending: "Waiting for you",
  published: "Posted",
  cancelled: "Cancelled",
  superseded: "Replaced",
};

const chat = state.chat;

/** Knows `drafts` (of GET /api/sessions/{id}/drafts) as those of the shown conversation. */
export function indexDrafts(drafts) {
  chat.draftIndex = new Map();
  chat.latestDraft = null;
  for (const draft of drafts) {
    for (const version of draft.versions) chat.draftIndex.set(version.sourceMessageSeq + 1, { draft, version });
    if (!chat.latestDraft || String(draft.createdAt) >= String(chat.latestDraft.createdAt)) chat.latestDraft = draft;
  }
}

function isCurrent(draft, version) {
  return chat.latestDraft && draft.id === chat.latestDraft.id && version.version === draft.currentVersion;
}

/** The shown conversation can no longer go on: its drafts can no longer be posted from it. */
function ended() {
  // Archived is not ended: a message (a card's button too) continues the conversation.
  return chat.closed === "deleted" || Boolean(chat.viewing && chat.viewing.status !== "active");
}

function cardState(draft, version) {
  if (version.version !== draft.currentVersion) return { status: "earlier", label: "Earlier version" };
  const status = draft.status;
  if (status === "pending" && ended()) return { status: "archived", label: chat.closed === "deleted" ? "Deleted, not posted" : "Archived, not posted" };
  return { status, label: DRAFT_STATUS[status] || status };
}

function cardActions(draft, version) {
  const actions = [];
  if (!isCurrent(draft, version) || chat.viewing || ended()) return actions;
  const say = (label, phrase, cls) => h("button", { type: "button", class: cls, dataset: { say: phrase }, text: label });
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
  const versions = switcher(message); // a reply with other versions: ‹ 2/3 ›
  if (versions) item.append(h("div", { class: "msg-foot" }, message.createdAt ? timeOf(message.createdAt) : null, versions));
  else if (message.createdAt) item.append(timeOf(message.createdAt));
  return markStopped(item, message.seq, message.stopped);
}

/** Brings cards already on screen up to date (status, buttons) without re-adding them. */
export function refreshCards() {
  for (const item of el.messages.querySelectorAll("li.msg-draft")) {
    const entry = chat.draftIndex.get(Number(item.dataset.seq));
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

/** A stored message: a draft card when it is a draft's version, else a bubble. */
export function renderItem(message) {
  const entry = message.role === "assistant" && chat.draftIndex.get(message.seq);
  return entry ? draftItem(message, entry) : messageItem(message);
}
