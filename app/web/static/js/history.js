// The history browser: tabs, search, infinite scroll, and what can be done to a conversation.

import { ApiError, getJson, send, sendJson } from "./api.js";
import { $, announce, formatDate, h, show } from "./dom.js";
import { describeProgress, downloadFile, downloadWithProgress } from "./downloads.js";
import { state } from "./state.js";

const PAGE_SIZE = 20;
const SEARCH_DELAY_MS = 250;

const el = {};
let hooks = { onOpen() {}, onRestored() {}, onGone() {}, onRenamed() {} };
const list = {
  status: "active",
  q: "",
  cursor: null,
  done: false,
  loading: false,
  generation: 0,
  stale: true,
  replace: false,
};
let observer = null;
let searchTimer = null;
let exporting = false;

export function initHistory(callbacks) {
  hooks = { ...hooks, ...callbacks };
  for (const id of [
    "history-list", "history-status", "history-sentinel", "history-error", "search-form", "search-input",
    "export-all", "import-file", "transfer", "transfer-text", "transfer-progress", "confirm-dialog",
    "confirm-text", "confirm-title", "rename-dialog", "rename-input", "history-panel", "history-scroll",
  ]) {
    el[id] = $(id);
  }
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
    window.clearTimeout(searchTimer);
    applySearch();
  });
  el["search-input"].addEventListener("input", () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(applySearch, SEARCH_DELAY_MS);
  });
  // Enter in the title field saves (the form's first button is Cancel).
  el["rename-input"].addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      if (el["rename-input"].value.trim()) el["rename-dialog"].close("confirm");
    }
  });
  el["export-all"].addEventListener("click", exportAll);
  el["import-file"].addEventListener("change", importFile);

  // An open "More" menu closes when the user clicks or tabs anywhere else.
  document.addEventListener("click", closeMenus);
  document.addEventListener("focusin", closeMenus);

  observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((entry) => entry.isIntersecting)) loadMore();
    },
    { root: el["history-scroll"], rootMargin: "0px 0px 300px 0px" },
  );
  observer.observe(el["history-sentinel"]);
}

function selectTab(status) {
  for (const tab of document.querySelectorAll('[role="tab"][data-status]')) {
    const selected = tab.dataset.status === status;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  // Choosing the tab that is already selected reloads it, like a refresh.
  list.status = status;
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
  // keepRows: the old rows stay until the new first page replaces them (no flash).
  list.replace = keepRows;
  if (!keepRows) {
    el["history-list"].replaceChildren();
    el["history-status"].textContent = "";
  }
  el["history-error"].textContent = "";
  return loadMore();
}

/** The chat changed something: reload now if the list is on screen, else on next view. */
export function markStale() {
  list.stale = true;
  if (isVisible()) reload({ keepRows: true });
}

const LIVE_DELAY_MS = 300;
let liveTimer = null;

/** Something changed on some device: reload soon, once for a burst of events, and never
 *  under the user's hands (an open menu or dialog, focus in the list). */
export function liveChanged() {
  list.stale = true;
  window.clearTimeout(liveTimer);
  liveTimer = window.setTimeout(applyLiveChange, LIVE_DELAY_MS);
}

function applyLiveChange() {
  liveTimer = null;
  if (!state.user || !list.stale || !isVisible()) return;
  const busy =
    list.loading ||
    document.querySelector(".row-actions:not([hidden]), dialog[open]") ||
    el["history-list"].contains(document.activeElement);
  if (busy) {
    liveTimer = window.setTimeout(applyLiveChange, LIVE_DELAY_MS * 3);
    return;
  }
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
  const params = new URLSearchParams({ status: list.status, limit: String(PAGE_SIZE) });
  if (list.q) params.set("q", list.q);
  if (list.cursor) params.set("cursor", list.cursor);
  try {
    const page = await getJson(`/api/sessions?${params}`);
    if (generation !== list.generation) return;
    const items = page.items || [];
    if (list.replace) replaceRows(items.map(row));
    else el["history-list"].append(...items.map(row));
    list.replace = false;
    list.cursor = page.nextCursor || null;
    list.done = !list.cursor;
    const count = el["history-list"].children.length;
    if (count === 0) {
      el["history-status"].textContent = list.q
        ? `No ${list.status === "all" ? "" : `${list.status} `}conversations match “${list.q}”.`
        : emptyText();
    } else {
      el["history-status"].textContent = list.done ? `${count} ${count === 1 ? "conversation" : "conversations"}` : "";
    }
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

/** Swaps in fresh rows; keyboard focus stays on the same control of the same row. */
function replaceRows(rows) {
  const focused = document.activeElement;
  const oldRow = el["history-list"].contains(focused) ? focused.closest("li[data-id]") : null;
  let target = null;
  if (oldRow) {
    const controls = [...oldRow.querySelectorAll("button")];
    const index = controls.indexOf(focused);
    const fresh = rows.find((r) => r.dataset.id === oldRow.dataset.id);
    const menuOpen = oldRow.querySelector(".row-actions:not([hidden])");
    if (fresh && menuOpen) {
      fresh.querySelector(".row-actions").hidden = false;
      fresh.querySelector(".row-more").setAttribute("aria-expanded", "true");
    }
    if (fresh && index !== -1) target = [...fresh.querySelectorAll("button")][index] || null;
  }
  el["history-list"].replaceChildren(...rows);
  if (target) target.focus();
}

function checkSentinel() {
  const box = el["history-sentinel"].getBoundingClientRect();
  const view = el["history-scroll"].getBoundingClientRect();
  if (isVisible() && box.top < view.bottom + 300) loadMore();
}

function emptyText() {
  if (list.status === "archived") return "Nothing archived yet. Conversations are archived after a while without messages.";
  if (list.status === "active") return "No active conversations. Start one in the chat.";
  return "No conversations yet.";
}

// ---- rows ------------------------------------------------------------------------------

const SOURCES = { chatgpt: "ChatGPT", claude: "Claude", openwebui: "Open WebUI", chatkeep: "a Chatkeep export" };

// A search snippet as text with <mark>s; the offsets count code points, as the API says.
function highlighted(snippet) {
  const chars = Array.from(snippet.text);
  const parts = [];
  let at = 0;
  for (const [start, end] of snippet.highlights) {
    if (start < at) continue;
    parts.push(chars.slice(at, start).join(""), h("mark", { text: chars.slice(start, end).join("") }));
    at = end;
  }
  parts.push(chars.slice(at).join(""));
  return parts;
}

function row(item) {
  const titleId = `row-title-${item.id}`;
  const archived = item.status !== "active";
  const li = h("li", { class: `row row-${item.status}`, dataset: { id: item.id, status: item.status }, "aria-labelledby": titleId });
  const open = h(
    "button",
    { type: "button", class: "row-open", id: titleId, "aria-describedby": `row-meta-${item.id}` },
    h("span", { class: "row-title", text: item.title }),
  );
  open.addEventListener("click", () => hooks.onOpen({ ...item }));
  const preview = item.snippet
    ? h("p", { class: "row-preview row-snippet" }, ...highlighted(item.snippet))
    : h("p", { class: "row-preview", text: item.preview || "" });
  const meta = h(
    "p",
    { class: "row-meta", id: `row-meta-${item.id}` },
    h("span", { class: `badge badge-${item.status}`, text: archived ? "Archived" : "Active" }),
    item.importedFrom ? h("span", { class: "badge badge-imported", text: `From ${SOURCES[item.importedFrom] || item.importedFrom}` }) : null,
    h("span", { text: `${item.messageCount} ${item.messageCount === 1 ? "message" : "messages"}` }),
    h("span", { text: `Last active ${formatDate(item.lastActivityAt)}` }),
    h("span", { class: "row-created", text: `Started ${formatDate(item.createdAt)}` }),
  );
  const quick = h("div", { class: "row-quick" });
  if (archived) {
    quick.append(button("Restore", "btn btn-primary btn-small", () => restore(item.id), `Restore “${item.title}”`));
  }
  const actions = h("div", { class: "row-actions", id: `row-actions-${item.id}`, hidden: true });
  const toggle = h("button", {
    type: "button",
    class: "btn btn-small row-more",
    "aria-expanded": "false",
    "aria-controls": `row-actions-${item.id}`,
    "aria-label": `More actions for “${item.title}”`,
    text: "More",
  });
  toggle.addEventListener("click", () => setMenu(actions, actions.hidden));
  if (!archived) actions.append(button("Archive", "btn btn-small", () => archive(item), null));
  actions.append(
    button("Rename", "btn btn-small", () => rename(item, li), null),
    button("Export JSON", "btn btn-small", () => exportOne(item, "json"), null),
    button("Export PDF", "btn btn-small", () => exportOne(item, "pdf"), null),
    button("Delete", "btn btn-small btn-danger", () => remove(item, li), null),
  );
  actions.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      setMenu(actions, false);
      toggle.focus();
    }
  });
  const menu = h("div", { class: "row-menu" }, toggle, actions);
  quick.append(menu);
  li.append(open, preview, meta, quick);
  return li;
}

function setMenu(actions, open) {
  if (open) closeMenus();
  actions.hidden = !open;
  const toggle = actions.parentElement.querySelector(".row-more");
  toggle.setAttribute("aria-expanded", String(open));
  if (open) actions.querySelector("button").focus();
}

function closeMenus(event) {
  for (const actions of document.querySelectorAll(".row-actions:not([hidden])")) {
    if (event && actions.parentElement.contains(event.target)) continue;
    actions.hidden = true;
    actions.parentElement.querySelector(".row-more").setAttribute("aria-expanded", "false");
  }
}

function button(label, cls, onClick, ariaLabel) {
  const b = h("button", { type: "button", class: cls, "aria-label": ariaLabel, text: label });
  b.addEventListener("click", async () => {
    const menu = b.closest(".row-actions");
    if (menu) setMenu(menu, false);
    b.disabled = true;
    try {
      await onClick();
    } finally {
      if (b.isConnected) b.disabled = false;
    }
  });
  return b;
}

function reportError(err) {
  if (err instanceof ApiError && err.status === 401) return;
  el["history-error"].textContent = err.message;
}

const path = (id) => `/api/sessions/${encodeURIComponent(id)}`;

export async function restore(id) {
  el["history-error"].textContent = "";
  try {
    await sendJson("POST", `${path(id)}/restore`);
    announce("Conversation restored. You can continue it now.");
    list.stale = true;
    await hooks.onRestored(id);
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
    reload();
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
    item.title = updated?.title || title;
    li.querySelector(".row-title").textContent = item.title;
    hooks.onRenamed(item.id, item.title);
    announce("Conversation renamed.");
  } catch (err) {
    reportError(err);
  }
}

async function remove(item, li) {
  const ok = await ask(el["confirm-dialog"], () => {
    el["confirm-text"].textContent =
      `“${item.title}” and its ${item.messageCount} messages will be deleted for good. ` +
      "Export it first if you may want it back.";
  });
  if (!ok) return;
  try {
    await send("DELETE", path(item.id));
    li.remove();
    hooks.onGone(item.id, "deleted");
    announce(`“${item.title}” deleted.`);
    if (!el["history-list"].children.length) el["history-status"].textContent = emptyText();
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

// ---- export all / import ---------------------------------------------------------------

function showTransfer(text, progress) {
  show(el.transfer, true);
  el["transfer-text"].textContent = text;
  const bar = el["transfer-progress"];
  if (progress === undefined) bar.hidden = true;
  else {
    bar.hidden = false;
    if (progress === null) bar.removeAttribute("value");
    else bar.value = progress;
  }
}

async function exportAll() {
  if (exporting) return;
  exporting = true;
  el["export-all"].disabled = true;
  el["history-error"].textContent = "";
  showTransfer("Preparing your export…", null);
  try {
    const { received, name } = await downloadWithProgress("/api/export?format=zip&status=all", "chatkeep-export.zip", (p) => {
      showTransfer(`Downloading export: ${describeProgress(p)}`, p.total ? Math.round((100 * p.received) / p.total) : null);
    });
    showTransfer(`Export saved as ${name} (${describeProgress({ received, total: 0 }).replace(" so far", "")}).`);
  } catch (err) {
    show(el.transfer, false);
    reportError(err);
  } finally {
    exporting = false;
    el["export-all"].disabled = false;
  }
}

function importSummary(result) {
  if (!result || typeof result !== "object") return "Import finished.";
  const parts = [];
  const imported = result.imported ?? result.importedCount ?? result.created;
  const skipped = result.skipped ?? result.skippedCount;
  if (typeof imported === "number") parts.push(`${imported} ${imported === 1 ? "conversation" : "conversations"} imported`);
  else if (Array.isArray(imported)) parts.push(`${imported.length} ${imported.length === 1 ? "conversation" : "conversations"} imported`);
  if (typeof skipped === "number" && skipped) parts.push(`${skipped} already here, skipped`);
  else if (Array.isArray(skipped) && skipped.length) parts.push(`${skipped.length} already here, skipped`);
  if (Array.isArray(result.failed) && result.failed.length) {
    const names = result.failed.map((f) => `“${f.title || f.sourceId || `entry ${f.index + 1}`}”`).join(", ");
    parts.push(`${result.failed.length} could not be read and ${result.failed.length === 1 ? "was" : "were"} left out: ${names}`);
  }
  return parts.length ? `Import finished: ${parts.join(", ")}.` : "Import finished.";
}

async function importFile() {
  const input = el["import-file"];
  const file = input.files && input.files[0];
  if (!file) return;
  el["history-error"].textContent = "";
  showTransfer(`Importing ${file.name}…`, null);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await send("POST", "/api/import", { body: form });
    const type = response.headers.get("content-type") || "";
    const result = type.includes("json") ? await response.json() : null;
    showTransfer(importSummary(result));
    announce(importSummary(result));
    reload();
  } catch (err) {
    show(el.transfer, false);
    reportError(err);
  } finally {
    input.value = "";
  }
}

export function resetHistory() {
  window.clearTimeout(liveTimer);
  liveTimer = null;
  list.generation++;
  list.cursor = null;
  list.done = false;
  list.loading = false;
  list.stale = true;
  el["history-list"].replaceChildren();
  el["history-status"].textContent = "";
  el["history-error"].textContent = "";
  show(el.transfer, false);
}
