// The history browser: tabs (Active, Archived, All, Trash), search, the list read page by
// page as it scrolls (and again after a change anywhere), bulk actions on the selection, and
// what can be done to a conversation. Its parts: history-panel.js (its elements),
// history-rows.js, history-selection.js, history-tags.js and history-transfer.js (export all,
// import).

import { ApiError, getJson, send, sendJson } from "./api.js";
import { syncClock } from "./dates.js";
import { announce, show } from "./dom.js";
import { downloadFile } from "./downloads.js";
import { bindHistoryPanel, el, plural, reportError, rows, what } from "./history-panel.js";
import { appendRows, closeMenus, setRowActions, updateExpiries } from "./history-rows.js";
import { clearSelection, pruneSelection, updateBulkBar } from "./history-selection.js";
import { initTags, loadTags, parseTags } from "./history-tags.js";
import { initTransfer } from "./history-transfer.js";
import { state } from "./state.js";
import { hideToast, showToast } from "./toast.js";

const PAGE_SIZE = 20;
const PAGE_MAX = 100; // the API's largest page: a refresh reads again what is shown, up to this
const SEARCH_DELAY_MS = 250;
const EXPIRY_TICK_MS = 30_000;

/** What the page does when a conversation is opened, restored, gone, renamed, brought back;
 *  set once by initHistory(). */
const hooks = { onOpen() {}, onRestored() {}, onGone() {}, onRenamed() {}, onUndone() {} };
const hist = state.history;
const { list, shown, selection } = hist;

export function initHistory(callbacks) {
  Object.assign(hooks, callbacks);
  bindHistoryPanel();
  const tabs = [...document.querySelectorAll('[role="tab"][data-status]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab.dataset.status));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      let next = null;
      if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
      else if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
      else if (event.key === "Home") next = tabs[0];
      else if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        next.focus();
        selectTab(next.dataset.status);
      }
    });
  }
  el["search-form"].addEventListener("submit", (event) => {
    event.preventDefault();
    window.clearTimeout(hist.searchTimer);
    applySearch();
  });
  el["search-input"].addEventListener("input", () => {
    window.clearTimeout(hist.searchTimer);
    hist.searchTimer = window.setTimeout(applySearch, SEARCH_DELAY_MS);
  });
  // Enter in a dialog's text field saves (the form's first button is Cancel).
  el["rename-input"].addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      if (el["rename-input"].value.trim()) el["rename-dialog"].close("confirm");
    }
  });
  el["tags-input"].addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      saveTags();
    }
  });
  // Save keeps the dialog open until the tags are stored: a refusal is said in it, with
  // what was typed still there to correct.
  el["tags-form"].addEventListener("submit", (event) => {
    if (event.submitter?.value !== "confirm") return; // Cancel closes
    event.preventDefault();
    saveTags();
  });
  // What was imported is archived: the Archived tab shows it (any search or tag cleared).
  initTransfer({
    onImported: (result) => {
      if (!result.imported) {
        reload();
        return;
      }
      list.q = "";
      list.tag = null;
      el["search-input"].value = "";
      hist.tagsStale = true;
      selectTab("archived");
    },
  });
  initTags({ onChosen: () => reload() });
  setRowActions({
    open: (item) => hooks.onOpen(item),
    untrash,
    deleteForever,
    restore,
    archive,
    setPinned,
    editTags,
    rename,
    exportOne,
    moveToTrash,
  });
  for (const b of el["bulk-bar"].querySelectorAll("[data-bulk]")) {
    b.addEventListener("click", () => bulk(b.dataset.bulk, b));
  }
  el["bulk-clear"].addEventListener("click", () => {
    clearSelection();
    el["search-input"].focus();
  });
  el["history-panel"].addEventListener("keydown", (event) => {
    if (event.key === "Escape" && selection.ids.size && !document.querySelector("dialog[open]")) {
      event.preventDefault();
      clearSelection();
      announce("Selection cleared.");
    }
  });
  // Shift-click selects a range: the browser must not select text as well.
  el["history-list"].addEventListener("mousedown", (event) => {
    if (event.shiftKey && event.target.closest("li.row")) event.preventDefault();
  });
  document.addEventListener("chatkeep:toast-closed", () => {
    if (isVisible()) focusAfterRemoval(null);
  });

  // An open "More" menu closes when the user clicks or tabs anywhere else.
  document.addEventListener("click", closeMenus);
  document.addEventListener("focusin", closeMenus);

  hist.observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore();
    },
    { root: el["history-scroll"], rootMargin: "0px 0px 300px 0px" },
  );
  hist.observer.observe(el["history-sentinel"]);
  window.setInterval(updateExpiries, EXPIRY_TICK_MS);
}

function selectTab(status) {
  for (const tab of document.querySelectorAll('[role="tab"][data-status]')) {
    const selected = tab.dataset.status === status;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  // Choosing the tab that is already selected reloads it, like a refresh.
  list.status = status;
  show(el["trash-note"], status === "trash");
  reload();
}

function applySearch() {
  const q = el["search-input"].value.trim();
  if (q === list.q) return;
  list.q = q;
  reload();
}

/** Reloads the list from the first page (after a change, a sign-in, or a refresh). */
export function reload({ keepRows = false } = {}) {
  list.generation++;
  list.cursor = null;
  list.done = false;
  list.loading = false;
  list.stale = false;
  // keepRows: the old rows stay until the fresh ones replace them (no flash), and as many
  // are read again as are shown, so the list does not shrink under the user.
  list.replace = keepRows;
  list.limit = keepRows ? Math.min(PAGE_MAX, Math.max(PAGE_SIZE, shown.size)) : PAGE_SIZE;
  if (!keepRows) {
    clearSelection();
    shown.clear();
    el["history-list"].replaceChildren();
    el["history-status"].textContent = "";
  }
  el["history-error"].textContent = "";
  if (!keepRows || hist.tagsStale) loadTags();
  return loadMore();
}

/** The chat changed something: reload now if the list is on screen, else on next view. */
export function markStale() {
  list.stale = true;
  if (isVisible()) reload({ keepRows: true });
}

const LIVE_DELAY_MS = 300;
// Focus in the list holds a refresh back (the rows would change under a screen reader's
// cursor), but not for ever: rows come back with the same control focused.
const LIVE_FOCUS_WAIT_MS = 5000;

/** Something changed on some device (`kind` of event; none: anything may have): reload
 *  soon, once for a burst of events, and never under the user's hands (an open menu or
 *  dialog). */
export function liveChanged(kind) {
  list.stale = true;
  if (kind !== "message") hist.tagsStale = true;
  window.clearTimeout(hist.liveTimer);
  hist.liveTimer = window.setTimeout(applyLiveChange, LIVE_DELAY_MS);
}

function applyLiveChange() {
  hist.liveTimer = null;
  if (!state.user || !list.stale || !isVisible()) {
    hist.liveWaitingSince = 0;
    return;
  }
  const now = Date.now();
  if (!hist.liveWaitingSince) hist.liveWaitingSince = now;
  const hands = list.loading || document.querySelector(".row-actions:not([hidden]), dialog[open]");
  const focused = el["history-list"].contains(document.activeElement) && now - hist.liveWaitingSince < LIVE_FOCUS_WAIT_MS;
  if (hands || focused) {
    hist.liveTimer = window.setTimeout(applyLiveChange, LIVE_DELAY_MS * 3);
    return;
  }
  hist.liveWaitingSince = 0;
  reload({ keepRows: true });
}

export function ensureFresh() {
  if (list.stale) reload();
}

function isVisible() {
  return el["history-panel"].offsetParent !== null;
}

async function loadMore() {
  if (list.loading || list.done || !state.user) return;
  list.loading = true;
  const generation = list.generation;
  el["history-list"].setAttribute("aria-busy", "true");
  if (!list.replace) el["history-status"].textContent = "Loading…";
  const limit = list.replace ? list.limit : PAGE_SIZE;
  // compact: each item with only what a row shows, null fields left out.
  const params = new URLSearchParams({ status: list.status, limit: String(limit), compact: "true" });
  if (list.q) params.set("q", list.q);
  if (list.tag) params.set("tag", list.tag);
  if (list.cursor) params.set("cursor", list.cursor);
  try {
    const page = await getJson(`/api/sessions?${params}`);
    if (generation !== list.generation) return;
    syncClock(page.now);
    const items = page.items;
    if (list.replace) replaceRows(items);
    else appendRows(el["history-list"], items);
    list.replace = false;
    list.cursor = page.nextCursor || null;
    list.done = !list.cursor;
    pruneSelection();
    updateStatus();
  } catch (err) {
    if (generation !== list.generation) return;
    list.done = true;
    el["history-status"].textContent = "";
    if (!(err instanceof ApiError && err.status === 401)) el["history-error"].textContent = err.message;
  } finally {
    if (generation === list.generation) {
      list.loading = false;
      el["history-list"].setAttribute("aria-busy", "false");
      // The sentinel may still be on screen (short pages): keep filling.
      if (!list.done) window.requestAnimationFrame(checkSentinel);
    }
  }
}

function updateStatus() {
  const count = rows().length;
  if (count === 0) {
    el["history-status"].textContent = emptyText();
  } else {
    el["history-status"].textContent = list.done ? `${count} ${count === 1 ? "conversation" : "conversations"}` : "";
  }
}

/** Swaps in fresh rows; keyboard focus stays on the same control of the same row. */
function replaceRows(items) {
  const focused = document.activeElement;
  const oldRow = el["history-list"].contains(focused) ? focused.closest("li.row") : null;
  const scroll = el["history-scroll"].scrollTop;
  let target = null;
  shown.clear();
  const fresh = document.createDocumentFragment();
  appendRows(fresh, items);
  if (oldRow) {
    const controls = [...oldRow.querySelectorAll("button, input")];
    const index = controls.indexOf(focused);
    const again = fresh.querySelector(`li.row[data-id="${CSS.escape(oldRow.dataset.id)}"]`);
    const menuOpen = oldRow.querySelector(".row-actions:not([hidden])");
    if (again && menuOpen) {
      again.querySelector(".row-actions").hidden = false;
      again.querySelector(".row-more").setAttribute("aria-expanded", "true");
    }
    if (again && index !== -1) target = [...again.querySelectorAll("button, input")][index] || null;
  }
  el["history-list"].replaceChildren(fresh);
  el["history-scroll"].scrollTop = scroll;
  if (target) target.focus({ preventScroll: true });
}

function checkSentinel() {
  const box = el["history-sentinel"].getBoundingClientRect();
  const view = el["history-scroll"].getBoundingClientRect();
  if (isVisible() && box.top < view.bottom + 300) loadMore();
}

function emptyText() {
  const where = list.status === "all" ? "" : list.status === "trash" ? "trashed " : `${list.status} `;
  if (list.q) return `No ${where}conversations match “${list.q}”${list.tag ? ` with the tag “${list.tag}”` : ""}.`;
  if (list.tag) return `No ${where}conversations with the tag “${list.tag}”.`;
  if (list.status === "trash") return "The trash is empty.";
  if (list.status === "archived") return "Nothing archived yet. Conversations are archived after a while without messages.";
  if (list.status === "active") return "No active conversations. Start one in the chat.";
  return "No conversations yet.";
}


/** Takes rows away (and groups left empty); focus goes to the next row. */
function removeRows(ids) {
  const gone = new Set(ids);
  const all = rows();
  const focusWasIn = all.some((r) => gone.has(r.dataset.id) && r.contains(document.activeElement));
  const index = all.findIndex((r) => gone.has(r.dataset.id));
  for (const r of all) {
    if (!gone.has(r.dataset.id)) continue;
    const group = r.closest(".history-group");
    r.remove();
    shown.delete(r.dataset.id);
    selection.ids.delete(r.dataset.id);
    if (group && !group.querySelector("li.row")) group.remove();
  }
  updateBulkBar();
  updateStatus();
  if (focusWasIn || document.activeElement === document.body) focusAfterRemoval(index);
}

function focusAfterRemoval(index) {
  const left = rows();
  const next = index === null ? left[0] : left[Math.min(index, left.length - 1)];
  (next ? next.querySelector(".row-open") : el["search-input"]).focus({ preventScroll: false });
}

async function bulk(action, b) {
  const ids = [...selection.ids].filter((id) => shown.has(id));
  if (!ids.length) return;
  const picked = ids.map((id) => shown.get(id));
  let tags = [];
  if (action === "tag") {
    const ok = await askTags(
      () => {
        el["tags-title"].textContent = `Add tags to ${what(ids.length)}`;
        el["tags-input"].value = "";
        el["tags-ok"].textContent = "Add";
      },
      async (typed) => {
        if (typed.length) await sendJson("POST", "/api/sessions/bulk", { action, ids, tags: typed });
        tags = typed;
      },
    );
    if (!ok || !tags.length) return;
    clearSelection();
    hist.tagsStale = true;
    announce(`${tags.length === 1 ? `Tag “${tags[0]}”` : "Tags"} added to ${what(ids.length)}.`);
    reload({ keepRows: true });
    return;
  } else if (action === "delete") {
    const ok = await ask(el["confirm-dialog"], () => {
      el["confirm-title"].textContent = `Delete ${what(ids.length)} forever?`;
      el["confirm-text"].textContent = "They go for good, with their messages, drafts and images. This cannot be undone.";
      el["confirm-ok"].textContent = "Delete forever";
    });
    if (!ok) return;
  }
  el["history-error"].textContent = "";
  b.disabled = true;
  try {
    await sendJson("POST", "/api/sessions/bulk", { action, ids, tags });
  } catch (err) {
    reportError(err);
    return;
  } finally {
    b.disabled = false;
  }
  clearSelection();
  hist.tagsStale = true;
  const n = what(ids.length);
  if (action === "trash") {
    for (const id of ids) hooks.onGone(id, "deleted");
    removeRows(ids);
    showToast(`${n} moved to trash.`, { action: "Undo", onAction: () => undoTrash(ids) });
  } else if (action === "delete") {
    for (const id of ids) hooks.onGone(id, "deleted");
    removeRows(ids);
    announce(`${n} deleted for good.`);
  } else if (action === "archive") {
    for (const item of picked) if (item.status === "active") hooks.onGone(item.id, "archived");
    announce(`${n} archived.`);
  } else if (action === "restore") {
    announce(`${n} restored.`);
  } else {
    announce(`${tags.length === 1 ? `Tag “${tags[0]}”` : "Tags"} added to ${n}.`);
  }
  reload({ keepRows: true });
}

async function editTags(item) {
  el["history-error"].textContent = "";
  let changed = false;
  const ok = await askTags(
    () => {
      el["tags-title"].textContent = `Tags for “${item.title}”`;
      el["tags-input"].value = item.tags.join(", ");
      el["tags-ok"].textContent = "Save";
    },
    async (tags) => {
      if (tags.join(",") === item.tags.join(",")) return;
      const updated = await sendJson("PATCH", path(item.id), { tags });
      item.tags = updated.tags;
      changed = true;
    },
  );
  if (!ok || !changed) return;
  announce(item.tags.length ? `Tags: ${item.tags.join(", ")}.` : "Tags removed.");
  hist.tagsStale = true;
  reload({ keepRows: true });
}

/** Opens the tags dialog; `save(tags)` stores what was typed. Resolves true once saved,
 *  false on Cancel or Escape. A refusal (a tag too long, too many) is said in the dialog,
 *  which stays open with the text as typed. */
function askTags(prepare, save) {
  hist.tagsSave = save;
  return ask(el["tags-dialog"], () => {
    prepare();
    el["tags-error"].textContent = "";
  });
}

async function saveTags() {
  const save = hist.tagsSave;
  if (!save || el["tags-ok"].disabled) return;
  el["tags-ok"].disabled = true;
  el["tags-error"].textContent = "";
  try {
    await save(parseTags(el["tags-input"].value));
    el["tags-dialog"].close("confirm");
  } catch (err) {
    el["tags-error"].textContent = err.message;
    el["tags-input"].focus();
  } finally {
    el["tags-ok"].disabled = false;
  }
}

async function setPinned(item, pinned) {
  el["history-error"].textContent = "";
  try {
    await sendJson("PATCH", path(item.id), { pinned });
    announce(pinned ? `“${item.title}” pinned to the top.` : `“${item.title}” unpinned.`);
    await reload({ keepRows: true });
  } catch (err) {
    reportError(err);
  }
}

// ---- actions ---------------------------------------------------------------------------

const path = (id) => `/api/sessions/${encodeURIComponent(id)}`;

/** Brings a conversation back to be continued: out of the archive, or out of the trash
 *  (where it returns to what it was: an archived one takes a second step). */
export async function restore(id) {
  el["history-error"].textContent = "";
  try {
    let session = await sendJson("POST", `${path(id)}/restore`);
    if (session && session.status === "archived") session = await sendJson("POST", `${path(id)}/restore`);
    announce("Conversation restored. You can continue it now.");
    list.stale = true;
    await hooks.onRestored(id);
  } catch (err) {
    reportError(err);
  }
}

/** Out of the trash, back to what it was (active or archived). */
async function untrash(item) {
  el["history-error"].textContent = "";
  try {
    const session = await sendJson("POST", `${path(item.id)}/restore`);
    removeRows([item.id]);
    announce(`“${item.title}” restored to ${session.status === "archived" ? "Archived" : "Active"}.`);
    loadTags();
  } catch (err) {
    reportError(err);
  }
}

async function moveToTrash(item) {
  el["history-error"].textContent = "";
  try {
    await send("DELETE", path(item.id));
  } catch (err) {
    reportError(err);
    return;
  }
  removeRows([item.id]);
  hooks.onGone(item.id, "deleted");
  showToast("Moved to trash.", { action: "Undo", onAction: () => undoTrash([item.id]) });
  loadTags();
}

async function undoTrash(ids) {
  el["history-error"].textContent = "";
  try {
    const result = await sendJson("POST", "/api/sessions/restore", { ids });
    const back = result.restored;
    showToast(back.length === 1 ? "Restored." : `${what(back.length)} restored.`);
    hooks.onUndone(back);
    hist.tagsStale = true;
    reload({ keepRows: true });
  } catch (err) {
    reportError(err);
  }
}

async function deleteForever(item) {
  const ok = await ask(el["confirm-dialog"], () => {
    el["confirm-title"].textContent = "Delete forever?";
    el["confirm-text"].textContent =
      `“${item.title}” and its ${plural(item.messageCount, "message", "messages")} will be deleted for good, ` +
      "with its drafts and images. This cannot be undone.";
    el["confirm-ok"].textContent = "Delete forever";
  });
  if (!ok) return;
  el["history-error"].textContent = "";
  try {
    await send("DELETE", `${path(item.id)}?permanent=true`);
    removeRows([item.id]);
    hooks.onGone(item.id, "deleted");
    announce(`“${item.title}” deleted for good.`);
  } catch (err) {
    reportError(err);
  }
}

async function archive(item) {
  el["history-error"].textContent = "";
  try {
    await sendJson("POST", `${path(item.id)}/archive`);
    announce(`“${item.title}” archived.`);
    hooks.onGone(item.id, "archived");
    reload({ keepRows: true });
  } catch (err) {
    reportError(err);
  }
}

function ask(dialog, prepare) {
  return new Promise((resolve) => {
    prepare();
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

async function rename(item, li) {
  const ok = await ask(el["rename-dialog"], () => {
    el["rename-input"].value = item.title;
  });
  const title = el["rename-input"].value.trim();
  if (!ok || !title || title === item.title) return;
  try {
    const updated = await sendJson("PATCH", path(item.id), { title });
    item.title = updated.title;
    li.querySelector(".row-title").textContent = item.title;
    hooks.onRenamed(item.id, item.title);
    announce("Conversation renamed.");
  } catch (err) {
    reportError(err);
  }
}

async function exportOne(item, format) {
  el["history-error"].textContent = "";
  try {
    await downloadFile(`${path(item.id)}/export?format=${format}`, `${item.id}.${format}`);
    announce(`Exported “${item.title}” as ${format.toUpperCase()}.`);
  } catch (err) {
    reportError(err);
  }
}

export function resetHistory() {
  window.clearTimeout(hist.liveTimer);
  hist.liveTimer = null;
  list.generation++;
  list.cursor = null;
  list.done = false;
  list.loading = false;
  list.stale = true;
  list.tag = null;
  hist.tagsGeneration++;
  hist.tagsStale = true;
  hist.knownTags = [];
  selection.ids.clear();
  selection.anchor = null;
  shown.clear();
  el["history-list"].replaceChildren();
  el["history-status"].textContent = "";
  el["history-error"].textContent = "";
  el["tag-filter"].replaceChildren();
  el["tag-filter"].hidden = true;
  el["bulk-bar"].hidden = true;
  hideToast(); // its Undo belongs to the user who was signed in
  show(el.transfer, false);
}
