// The history's rows: grouped by date (pinned ones first), each with its title, what is known
// of it, a search snippet, and its buttons and "More" menu.

import { dateGroup, expiryText, longTime, serverNow, shortDay, shortTime } from "./dates.js";
import { h } from "./dom.js";
import { el, plural } from "./history-panel.js";
import { select } from "./history-selection.js";
import { state } from "./state.js";

const EXPIRY_SOON_MS = 5 * 60_000;

const hist = state.history;
const { list, shown, selection } = hist;
/** What a row's buttons do; set once by setRowActions(). */
const rowActions = {
  open() {},
  untrash() {},
  deleteForever() {},
  restore() {},
  archive() {},
  setPinned() {},
  editTags() {},
  rename() {},
  exportOne() {},
  moveToTrash() {},
};

export function setRowActions(actions) {
  Object.assign(rowActions, actions);
}

function groupOf(item) {
  return item.pinned ? { key: "pinned", label: "Pinned" } : dateGroup(item.lastActivityAt);
}

/** Adds rows in list order (pinned first, then newest activity): each joins the last group
 *  when it belongs there, or starts the next one. */
export function appendRows(target, items) {
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
    const expiry = h("span", {
      class: "m row-expiry",
      dataset: { expires: item.expiresAt },
      title:
        "Conversations are archived after a while without messages (never deleted). " +
        "Writing in an archived one continues it.",
    });
    paintExpiry(expiry);
    parts.push(expiry);
  }
  if (item.status === "archived" && list.status !== "archived") {
    parts.push(h("span", { class: "badge badge-archived", text: "Archived" }));
  }
  if (item.importedFrom) {
    parts.push(h("span", { class: "badge badge-imported", text: `From ${SOURCES[item.importedFrom] || item.importedFrom}` }));
  }
  if (item.apiClient) {
    // Started by a program through /v1 with one of the user's API keys (text, never markup).
    parts.push(h("span", { class: "badge badge-imported", text: `API · ${item.apiClient}` }));
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
export function updateExpiries() {
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
    rowActions.open({ ...item });
  });
  const meta = h("p", { class: "row-meta", id: metaId }, ...metaParts(item));
  const snippet = item.snippet ? h("p", { class: "row-preview row-snippet" }, ...highlighted(item.snippet)) : null;
  const quick = h("div", { class: "row-quick" });
  if (trashed) {
    quick.append(
      button("Restore", "btn btn-small", () => rowActions.untrash(item), `Restore “${item.title}”`),
      button("Delete forever", "btn btn-small btn-danger", () => rowActions.deleteForever(item), `Delete “${item.title}” forever`),
    );
  } else {
    if (item.status === "archived") {
      quick.append(button("Restore", "btn btn-small row-restore", () => rowActions.restore(item.id), `Restore “${item.title}”`));
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
  if (item.status === "active") actions.append(button("Archive", "btn btn-small", () => rowActions.archive(item), null));
  actions.append(
    button(item.pinned ? "Unpin" : "Pin", "btn btn-small", () => rowActions.setPinned(item, !item.pinned), null),
    button("Edit tags…", "btn btn-small", () => rowActions.editTags(item), null),
    button("Rename", "btn btn-small", () => rowActions.rename(item, li), null),
    button("Export JSON", "btn btn-small", () => rowActions.exportOne(item, "json"), null),
    button("Export PDF", "btn btn-small", () => rowActions.exportOne(item, "pdf"), null),
    button("Delete", "btn btn-small btn-danger", () => rowActions.moveToTrash(item), null),
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

export function closeMenus(event) {
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
