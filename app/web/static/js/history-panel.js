// The history panel's elements, looked up once, and the small helpers its modules share.

import { ApiError } from "./api.js";
import { bindElements } from "./dom.js";

/** The panel's elements, looked up once by bindHistoryPanel(). */
export const el = {};

export function bindHistoryPanel() {
  bindElements(el, [
    "history-list", "history-status", "history-sentinel", "history-error", "search-form", "search-input",
    "export-all", "import-file", "transfer", "transfer-text", "transfer-progress", "confirm-dialog",
    "confirm-text", "confirm-title", "confirm-ok", "rename-dialog", "rename-input", "history-panel",
    "history-scroll", "tag-filter", "bulk-bar", "bulk-count", "bulk-clear", "tags-dialog", "tags-title",
    "tags-input", "tags-ok", "tags-known", "trash-note", "tags-form", "tags-error",
  ]);
}

/** The rows on screen, in order. */
export const rows = () => [...el["history-list"].querySelectorAll("li.row")];
export const rowOf = (id) => el["history-list"].querySelector(`li.row[data-id="${CSS.escape(id)}"]`);

export const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
export const what = (n) => plural(n, "conversation", "conversations");

export function reportError(err) {
  if (err instanceof ApiError && err.status === 401) return;
  el["history-error"].textContent = err.message;
}
