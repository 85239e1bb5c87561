// Selecting rows of the history (a click on the box, shift for a range, Ctrl/⌘ on the title)
// and the bar of what can be done to all of them at once.

import { el, rowOf, rows } from "./history-panel.js";
import { state } from "./state.js";

const { list, shown, selection } = state.history;

/** Selects or unselects a row; with `range`, every row from the last one chosen to this. */
export function select(id, on, range) {
  const all = rows();
  const to = all.findIndex((r) => r.dataset.id === id);
  const from = range && selection.anchor ? all.findIndex((r) => r.dataset.id === selection.anchor) : -1;
  const span = from === -1 ? [all[to]] : all.slice(Math.min(from, to), Math.max(from, to) + 1);
  for (const r of span) if (r) setSelected(r, on);
  selection.anchor = id;
  updateBulkBar();
}

function setSelected(li, on) {
  if (on) selection.ids.add(li.dataset.id);
  else selection.ids.delete(li.dataset.id);
  li.classList.toggle("row-selected", on);
  li.querySelector(".row-check").checked = on;
}

export function clearSelection() {
  for (const id of selection.ids) {
    const r = rowOf(id);
    if (r) setSelected(r, false);
  }
  selection.ids.clear();
  selection.anchor = null;
  updateBulkBar();
}

/** After a refresh: only rows still shown stay selected. */
export function pruneSelection() {
  for (const id of [...selection.ids]) if (!shown.has(id)) selection.ids.delete(id);
  if (selection.anchor && !shown.has(selection.anchor)) selection.anchor = null;
  updateBulkBar();
}

export function updateBulkBar() {
  const picked = [...selection.ids].map((id) => shown.get(id)).filter(Boolean);
  const bar = el["bulk-bar"];
  const hadFocus = bar.contains(document.activeElement);
  bar.hidden = picked.length === 0;
  if (!picked.length) {
    if (hadFocus) el["search-input"].focus();
    return;
  }
  el["bulk-count"].textContent = `${picked.length} selected`;
  const has = (status) => picked.some((item) => item.status === status);
  const can = {
    archive: has("active"),
    restore: has("archived") || has("trashed"),
    tag: !has("trashed"),
    trash: picked.some((item) => item.status !== "trashed"),
    delete: list.status === "trash",
  };
  for (const b of bar.querySelectorAll("[data-bulk]")) b.hidden = !can[b.dataset.bulk];
}
