// What the chat panel tells the user: a notice above the conversation (it expired, it was
// deleted elsewhere), and the error line under the message box.

import { show } from "./dom.js";
import { el } from "./chat-panel.js";

export function showNotice(text, { linkToArchive = false } = {}) {
  el["chat-notice-text"].textContent = text;
  show(el["chat-notice-action"], linkToArchive);
  show(el["chat-notice"], true);
}

export function hideNotice() {
  show(el["chat-notice"], false);
}

export function showError(text) {
  el["chat-error"].textContent = text || "";
}

/** The shown conversation is archived (idle for a while): writing in it continues it. */
export const ARCHIVED_NOTE =
  "This conversation was archived after a while without messages. Your next message continues it.";
