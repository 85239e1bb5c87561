// The share dialog of the open conversation: make a read-only link, copy it, choose how long
// it works, share again (a new snapshot, the same link) and revoke it.

import { ApiError, getJson, send, sendJson } from "./api.js";
import { $, announce, formatDate, show } from "./dom.js";
import { onSessionChange, openConversationId, state } from "./state.js";

const el = {};
const share = state.share;

const sharePath = (id) => `/api/sessions/${encodeURIComponent(id)}/share`;

export function initShare() {
  for (const id of [
    "share-chat", "share-dialog", "share-about", "share-expiry", "share-keep", "share-link",
    "share-url", "share-status", "share-error", "share-create", "share-copy", "share-revoke",
    "share-done", "share-keep-sharing",
    "share-close",
  ]) {
    el[id] = $(id);
  }
  el["share-chat"].addEventListener("click", openDialog);
  el["share-create"].addEventListener("click", createOrRefresh);
  el["share-copy"].addEventListener("click", copyLink);
  el["share-revoke"].addEventListener("click", revoke);
  el["share-keep-sharing"].addEventListener("click", () => {
    share.confirming = false;
    render();
    el["share-revoke"].focus();
  });
  el["share-close"].addEventListener("click", () => el["share-dialog"].close());
  el["share-url"].addEventListener("focus", () => el["share-url"].select());
  // The button is there whenever a conversation is open (not for a new, empty one, nor
  // a temporary one).
  document.addEventListener("chatkeep:conversation", updateButton);
  onSessionChange(updateButton);
  updateButton();
}

function updateButton() {
  const id = openConversationId();
  // A temporary conversation cannot be shared (the server says `409 temporary_chat`).
  show(el["share-chat"], Boolean(id) && !state.chat.temporary);
  if (el["share-dialog"].open && id !== share.sessionId) el["share-dialog"].close();
}

function expiryText(expiresAt) {
  return expiresAt ? `It works until ${formatDate(expiresAt)}.` : "It works until you revoke it.";
}

function render() {
  const shared = Boolean(share.link);
  show(el["share-link"], shared);
  show(el["share-copy"], shared);
  show(el["share-revoke"], shared);
  // Sharing again can keep the expiry the link has; a first share has none to keep.
  el["share-keep"].hidden = !shared;
  el["share-keep"].disabled = !shared;
  if (!shared && el["share-expiry"].value === "keep") el["share-expiry"].value = "";
  el["share-create"].textContent = shared ? "Update link" : "Create link";
  el["share-about"].textContent = shared
    ? "Anyone with this link can read the conversation as it was when you shared it. Update the link to include newer messages; the address stays the same."
    : "Anyone with the link can read this conversation as it is now, without signing in. Messages you send later are not included until you share again.";
  if (shared) {
    el["share-url"].value = share.link.url;
    el["share-status"].textContent = share.confirming
      ? "Stop sharing? The link stops working for everyone who has it."
      : `${share.done}${expiryText(share.link.expiresAt)}`;
  }
  // Stop sharing asks first: a second button says yes, another keeps the link.
  const confirming = shared && share.confirming;
  el["share-revoke"].textContent = confirming ? "Yes, stop sharing" : "Stop sharing";
  show(el["share-keep-sharing"], confirming);
  show(el["share-copy"], shared && !confirming);
  show(el["share-create"], !confirming);
  for (const button of [el["share-create"], el["share-copy"], el["share-revoke"]]) button.disabled = share.busy;
}

function showError(err) {
  el["share-error"].textContent = err ? err.message || String(err) : "";
}

async function openDialog() {
  share.sessionId = openConversationId();
  if (!share.sessionId) return;
  share.link = null;
  share.done = "";
  share.confirming = false;
  el["share-done"].textContent = "";
  showError("");
  el["share-expiry"].value = "";
  share.busy = true;
  render();
  el["share-dialog"].showModal();
  try {
    const detail = await getJson(`/api/sessions/${encodeURIComponent(share.sessionId)}?limit=1`);
    share.link = detail.shared;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError(err);
  } finally {
    share.busy = false;
    render();
  }
  if (share.link) el["share-expiry"].value = "keep"; // (the option is enabled by render)
}

async function createOrRefresh() {
  if (!share.sessionId || share.busy) return;
  const choice = el["share-expiry"].value;
  const body = choice === "keep" ? {} : { expiresInDays: choice ? Number(choice) : null };
  share.busy = true;
  share.confirming = false;
  el["share-done"].textContent = "";
  showError("");
  render();
  const again = Boolean(share.link);
  try {
    const made = await sendJson("POST", sharePath(share.sessionId), body);
    share.link = { url: made.url, expiresAt: made.expiresAt };
    share.done = again ? "Updated: the link shows the conversation as it is now. " : "Link created. ";
    announce(share.done);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError(err);
  } finally {
    share.busy = false;
    render();
  }
  if (share.link) el["share-expiry"].value = "keep";
  if (share.link) el["share-url"].focus();
}

async function copyLink() {
  if (!share.link) return;
  try {
    await navigator.clipboard.writeText(share.link.url);
  } catch {
    // No clipboard access (permission, an insecure origin): leave it selected to copy.
    el["share-url"].focus();
    el["share-url"].select();
    el["share-status"].textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
    return;
  }
  el["share-status"].textContent = `Link copied: ${share.link.url}`;
  announce("Link copied.");
}

async function revoke() {
  if (!share.sessionId || share.busy || !share.link) return;
  if (!share.confirming) {
    share.confirming = true;
    render();
    el["share-revoke"].focus();
    return;
  }
  share.busy = true;
  showError("");
  render();
  try {
    await send("DELETE", sharePath(share.sessionId));
    share.link = null;
    share.done = "";
    el["share-status"].textContent = "";
    el["share-done"].textContent = "Sharing stopped: the link no longer opens.";
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showError(err);
  } finally {
    share.busy = false;
    share.confirming = false;
    render();
  }
  if (!share.link) el["share-create"].focus();
}
