// The history browser: tabs (Active, Archived, All, Trash), search, tags, rows grouped by
// date, infinite scroll, selection with bulk actions, and what can be done to a conversation.

import { ApiError, getJson, send, sendJson } from "./api.js";
import { dateGroup, expiryText, longTime, serverNow, shortDay, shortTime, syncClock } from "./dates.js";
import { $, announce, h, show } from "./dom.js";
import { describeProgress, downloadFile, downloadWithProgress } from "./downloads.js";
import { state } from "./state.js";
import { hideToast, showToast } from "./toast.js";

const PAGE_SIZE = 20;
const PAGE_MAX = 100; // the API's largest page: a refresh reads again what is shown, up to this
const SEARCH_DELAY_MS = 250;
const EXPIRY_TICK_MS = 30_000;
const EXPIRY_SOON_MS = 5 * 60_000;

const el = {};
/** What the page does when a conversation is opened, restored, gone, renamed, brought back;
 *  set once by initHistory(). */
const hooks = { onOpen() {}, onRestored() {}, onGone() {}, onRenamed() {}, onUndone() {} };
const hist = state.history;
const { list, shown, selection } = hist;

export function initHistory(callbacks) {
  Object.assign(hooks, callbacks);
  for (const id of [
    "history-list", "history-status", "history-sentinel", "history-error", "search-form", "search-input",
    "export-all", "import-file", "transfer", "transfer-text", "transfer-progress", "confirm-dialog",
    "confirm-text", "confirm-title", "confirm-ok", "rename-dialog", "rename-input", "history-panel",
    "history-scroll", "tag-filter", "bulk-bar", "bulk-count", "bulk-clear", "tags-dialog", "tags-title",
    "tags-input", "tags-ok", "tags-known", "trash-note",
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
    window.clearTimeout(hist.searchTimer);
    applySearch();
  });
  el["search-input"].addEventListener("input", () => {
    window.clearTimeout(hist.searchTimer);
    hist.searchTimer = window.setTimeout(applySearch, SEARCH_DELAY_MS);
  });
  // Enter in a dialog's text field saves (the form's first button is Cancel).
  for (const [input, dialog] of [["rename-input", "rename-dialog"], ["tags-input", "tags-dialog"]]) {
    el[input].addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        if (input === "tags-input" || el[input].value.trim()) el[dialog].close("confirm");
      }
    });
  }
  el["export-all"].addEventListener("click", exportAll);
  el["import-file"].addEventListener("change", importFile);
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
  const params = new URLSearchParams({ status: list.status, limit: String(limit) });
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
    list.cursor = page.nextCursor;
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

const rows = () => [...el["history-list"].querySelectorAll("li.row")];
const rowOf = (id) => el["history-list"].querySelector(`li.row[data-id="${CSS.escape(id)}"]`);

// ---- groups ----------------------------------------------------------------------------

function groupOf(item) {
  return item.pinned ? { key: "pinned", label: "Pinned" } : dateGroup(item.lastActivityAt);
}

/** Adds rows in list order (pinned first, then newest activity): each joins the last group
 *  when it belongs there, or starts the next one. */
function appendRows(target, items) {
  for (const item of items) {
    const { key, label } = groupOf(item);
    let group = target.lastElementChild;
    if (!group || group.dataset.key !== key) {
      const id = `group-${++hist.groupSeq}`;
      group = h(
        "section",
        { class: `history-group history-group-${key === "pinned" ? "pinned" : "date"}`, dataset: { key } },
        h("h3", { class: "group-head", id, text: label }),
        h("ul", { class: "group-rows", "aria-labelledby": id }),
      );
      target.append(group);
    }
    group.querySelector(".group-rows").append(row(item));
  }
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

// ---- rows ------------------------------------------------------------------------------

const SOURCES = { chatgpt: "ChatGPT", claude: "Claude", openwebui: "Open WebUI", chatkeep: "a Chatkeep export" };
const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  // A pushpin, and three dots for "More".
  pin: "M9.5 2h5l-1 6 3.5 3v2h-4.5v7l-1 1-1-1v-7H5v-2l3.5-3z",
  more: "M5 10.5a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm7 0a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3zm7 0a1.5 1.5 0 1 1 0 3 1.5 1.5 0 0 1 0-3z",
};

function icon(name, cls) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `icon ${cls || ""}`);
  const shape = document.createElementNS(SVG, "path");
  shape.setAttribute("d", ICONS[name]);
  svg.append(shape);
  return svg;
}

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

/** The words a snippet marks, to find them again in the opened conversation. */
export function markedWords(snippet) {
  if (!snippet) return [];
  const chars = Array.from(snippet.text);
  const words = snippet.highlights.map(([start, end]) => chars.slice(start, end).join("").toLowerCase());
  return [...new Set(words.filter(Boolean))];
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function metaParts(item) {
  const text = (cls, value) => h("span", { class: `m ${cls}`, text: value });
  const parts = [];
  if (item.status === "trashed") {
    parts.push(text("row-purge", item.purgeAt ? `deleted for good on ${shortDay(item.purgeAt)}` : "in the trash"));
  }
  parts.push(
    h(
      "time",
      { class: "m row-time", datetime: item.lastActivityAt, title: `Last active ${longTime(item.lastActivityAt)}` },
      h("span", { class: "visually-hidden", text: "Last active " }),
      shortTime(item.lastActivityAt),
    ),
    text("row-count", plural(item.messageCount, "message", "messages")),
  );
  if (item.status === "active" && item.expiresAt) {
    const expiry = h("span", { class: "m row-expiry", dataset: { expires: item.expiresAt } });
    paintExpiry(expiry);
    parts.push(expiry);
  }
  if (item.status === "archived" && list.status !== "archived") {
    parts.push(h("span", { class: "badge badge-archived", text: "Archived" }));
  }
  if (item.importedFrom) {
    parts.push(h("span", { class: "badge badge-imported", text: `From ${SOURCES[item.importedFrom] || item.importedFrom}` }));
  }
  if (item.shared) parts.push(h("span", { class: "badge badge-shared", text: "Shared" }));
  for (const tag of item.tags) parts.push(h("span", { class: "row-tag", text: tag }));
  return parts;
}

function paintExpiry(expiry) {
  const text = expiryText(expiry.dataset.expires);
  if (expiry.textContent !== text) expiry.textContent = text;
  const left = Date.parse(expiry.dataset.expires) - serverNow();
  expiry.classList.toggle("row-expiry-soon", left < EXPIRY_SOON_MS);
}

/** Every "archives in N min" counts down, by the server's clock. */
function updateExpiries() {
  for (const expiry of el["history-list"].querySelectorAll(".row-expiry[data-expires]")) paintExpiry(expiry);
}

function row(item) {
  shown.set(item.id, item);
  const titleId = `row-title-${item.id}`;
  const metaId = `row-meta-${item.id}`;
  const trashed = item.status === "trashed";
  const selected = selection.ids.has(item.id);
  const li = h("li", {
    class: `row row-${item.status}${item.pinned ? " row-pinned" : ""}${selected ? " row-selected" : ""}`,
    dataset: { id: item.id, status: item.status },
    "aria-labelledby": titleId,
  });
  const check = h("input", { type: "checkbox", class: "row-check", "aria-label": `Select “${item.title}”` });
  check.checked = selected;
  check.addEventListener("click", (event) => select(item.id, check.checked, event.shiftKey));
  const open = h(
    "button",
    { type: "button", class: "row-open", id: titleId, "aria-describedby": metaId, title: item.preview || null },
    item.pinned ? icon("pin", "row-pin") : null,
    h("span", { class: "row-title", text: item.title }),
  );
  open.addEventListener("click", (event) => {
    // Ctrl/⌘-click and shift-click select, as in a file list; a plain click opens.
    if (event.shiftKey || event.ctrlKey || event.metaKey) {
      event.preventDefault();
      select(item.id, !selection.ids.has(item.id), event.shiftKey);
      return;
    }
    hooks.onOpen({ ...item });
  });
  const meta = h("p", { class: "row-meta", id: metaId }, ...metaParts(item));
  const snippet = item.snippet ? h("p", { class: "row-preview row-snippet" }, ...highlighted(item.snippet)) : null;
  const quick = h("div", { class: "row-quick" });
  if (trashed) {
    quick.append(
      button("Restore", "btn btn-small", () => untrash(item), `Restore “${item.title}”`),
      button("Delete forever", "btn btn-small btn-danger", () => deleteForever(item), `Delete “${item.title}” forever`),
    );
  } else {
    if (item.status === "archived") {
      quick.append(button("Restore", "btn btn-small row-restore", () => restore(item.id), `Restore “${item.title}”`));
    }
    quick.append(menu(item, li));
  }
  li.append(check, open, quick, meta);
  if (snippet) li.append(snippet);
  return li;
}

function menu(item, li) {
  const actions = h("div", { class: "row-actions", id: `row-actions-${item.id}`, hidden: true });
  const toggle = h(
    "button",
    {
      type: "button",
      class: "icon-btn row-more",
      "aria-expanded": "false",
      "aria-controls": `row-actions-${item.id}`,
      "aria-label": `More actions for “${item.title}”`,
      title: "More",
    },
    icon("more"),
  );
  toggle.addEventListener("click", () => setMenu(actions, actions.hidden));
  if (item.status === "active") actions.append(button("Archive", "btn btn-small", () => archive(item), null));
  actions.append(
    button(item.pinned ? "Unpin" : "Pin", "btn btn-small", () => setPinned(item, !item.pinned), null),
    button("Edit tags…", "btn btn-small", () => editTags(item), null),
    button("Rename", "btn btn-small", () => rename(item, li), null),
    button("Export JSON", "btn btn-small", () => exportOne(item, "json"), null),
    button("Export PDF", "btn btn-small", () => exportOne(item, "pdf"), null),
    button("Delete", "btn btn-small btn-danger", () => moveToTrash(item), null),
  );
  actions.addEventListener("keydown", (event) => {
    const items = [...actions.querySelectorAll("button:not(:disabled)")];
    const index = items.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.stopPropagation();
      setMenu(actions, false);
      toggle.focus();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      items[(index + step + items.length) % items.length]?.focus();
    }
  });
  return h("div", { class: "row-menu" }, toggle, actions);
}

function setMenu(actions, open) {
  if (open) closeMenus();
  actions.hidden = !open;
  const toggle = actions.parentElement.querySelector(".row-more");
  toggle.setAttribute("aria-expanded", String(open));
  if (!open) return;
  // Near the bottom of the list the menu opens upwards, so all of it is on screen.
  actions.classList.remove("row-actions-up");
  const box = actions.getBoundingClientRect();
  const view = el["history-scroll"].getBoundingClientRect();
  if (box.bottom > view.bottom && box.height < box.top - view.top) actions.classList.add("row-actions-up");
  actions.querySelector("button").focus();
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
    if (menu) {
      setMenu(menu, false);
      // Focus back on the menu's button, as a menu does (a dialog then returns it there).
      menu.parentElement.querySelector(".row-more").focus();
    }
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

// ---- selection -------------------------------------------------------------------------

/** Selects or unselects a row; with `range`, every row from the last one chosen to this. */
function select(id, on, range) {
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

function clearSelection() {
  for (const id of selection.ids) {
    const r = rowOf(id);
    if (r) setSelected(r, false);
  }
  selection.ids.clear();
  selection.anchor = null;
  updateBulkBar();
}

/** After a refresh: only rows still shown stay selected. */
function pruneSelection() {
  for (const id of [...selection.ids]) if (!shown.has(id)) selection.ids.delete(id);
  if (selection.anchor && !shown.has(selection.anchor)) selection.anchor = null;
  updateBulkBar();
}

function updateBulkBar() {
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

const what = (n) => plural(n, "conversation", "conversations");

async function bulk(action, b) {
  const ids = [...selection.ids].filter((id) => shown.has(id));
  if (!ids.length) return;
  const picked = ids.map((id) => shown.get(id));
  let tags = [];
  if (action === "tag") {
    const ok = await ask(el["tags-dialog"], () => {
      el["tags-title"].textContent = `Add tags to ${what(ids.length)}`;
      el["tags-input"].value = "";
      el["tags-ok"].textContent = "Add";
    });
    tags = parseTags(el["tags-input"].value);
    if (!ok || !tags.length) return;
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

// ---- tags ------------------------------------------------------------------------------

function parseTags(text) {
  return [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];
}

async function loadTags() {
  const generation = ++hist.tagsGeneration;
  hist.tagsStale = false;
  try {
    const body = await getJson("/api/tags");
    if (generation !== hist.tagsGeneration) return;
    hist.knownTags = body.tags;
  } catch (err) {
    if (generation !== hist.tagsGeneration) return;
    hist.knownTags = [];
  }
  renderTags();
}

function renderTags() {
  const box = el["tag-filter"];
  const focusedTag = box.contains(document.activeElement) ? document.activeElement.dataset.tag : null;
  const entries = [...hist.knownTags];
  // A chosen tag stays on screen (to be cleared) even when nothing carries it any more.
  if (list.tag && !entries.some((t) => t.tag === list.tag)) entries.unshift({ tag: list.tag, count: 0 });
  box.replaceChildren(
    ...entries.map(({ tag, count }) => {
      const pressed = list.tag === tag;
      const chip = h(
        "button",
        {
          type: "button",
          class: "tag-chip",
          "aria-pressed": String(pressed),
          "aria-label": `${tag}, ${what(count)}`,
          dataset: { tag },
        },
        h("span", { class: "tag-name", text: tag }),
        h("span", { class: "tag-count", text: String(count) }),
      );
      chip.addEventListener("click", () => {
        list.tag = pressed ? null : tag;
        renderTags();
        reload();
        box.querySelector(`[data-tag="${CSS.escape(tag)}"]`)?.focus();
      });
      return chip;
    }),
  );
  box.hidden = entries.length === 0;
  if (focusedTag !== null) box.querySelector(`[data-tag="${CSS.escape(focusedTag)}"]`)?.focus();
  el["tags-known"].replaceChildren(...hist.knownTags.map(({ tag }) => h("option", { value: tag })));
}

async function editTags(item) {
  const ok = await ask(el["tags-dialog"], () => {
    el["tags-title"].textContent = `Tags for “${item.title}”`;
    el["tags-input"].value = item.tags.join(", ");
    el["tags-ok"].textContent = "Save";
  });
  if (!ok) return;
  const tags = parseTags(el["tags-input"].value);
  if (tags.join(",") === item.tags.join(",")) return;
  el["history-error"].textContent = "";
  try {
    const updated = await sendJson("PATCH", path(item.id), { tags });
    item.tags = updated.tags;
    announce(item.tags.length ? `Tags: ${item.tags.join(", ")}.` : "Tags removed.");
    hist.tagsStale = true;
    reload({ keepRows: true });
  } catch (err) {
    reportError(err);
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
  if (hist.exporting) return;
  hist.exporting = true;
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
    hist.exporting = false;
    el["export-all"].disabled = false;
  }
}

/** What POST /api/import did: `{imported, skipped, sessions, failed}`. */
function importSummary(result) {
  const parts = [];
  const { imported, skipped, failed } = result;
  parts.push(`${imported} ${imported === 1 ? "conversation" : "conversations"} imported`);
  if (skipped) parts.push(`${skipped} already here, skipped`);
  if (failed.length) {
    const names = failed.map((f) => `“${f.title || f.sourceId || `entry ${f.index + 1}`}”`).join(", ");
    parts.push(`${failed.length} could not be read and ${failed.length === 1 ? "was" : "were"} left out: ${names}`);
  }
  return `Import finished: ${parts.join(", ")}.`;
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
    const result = await response.json();
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
