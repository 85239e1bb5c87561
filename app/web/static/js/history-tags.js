// Tags in the history: the filter chips (each with how many conversations carry it), the
// tags known for the dialog's suggestions, and reading what the user typed.

import { getJson } from "./api.js";
import { h } from "./dom.js";
import { el, what } from "./history-panel.js";
import { state } from "./state.js";

const hist = state.history;
const { list } = hist;
/** What the history does when a tag is chosen or cleared; set once by initTags(). */
const hooks = { onChosen() {} };

export function initTags(callbacks) {
  Object.assign(hooks, callbacks);
}

export function parseTags(text) {
  return [...new Set(text.split(",").map((t) => t.trim()).filter(Boolean))];
}

export async function loadTags() {
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
          dataset: { tag },
        },
        // The name is the visible text, with words for screen readers: "work, 2 conversations".
        h("span", { class: "tag-name" }, tag, h("span", { class: "sr-words", text: "," })),
        h("span", { class: "tag-count" }, String(count), h("span", { class: "sr-words", text: ` ${what(count).replace(/^\S+ /, "")}` })),
      );
      chip.addEventListener("click", () => {
        list.tag = pressed ? null : tag;
        renderTags();
        hooks.onChosen();
        box.querySelector(`[data-tag="${CSS.escape(tag)}"]`)?.focus();
      });
      return chip;
    }),
  );
  box.hidden = entries.length === 0;
  if (focusedTag !== null) box.querySelector(`[data-tag="${CSS.escape(focusedTag)}"]`)?.focus();
  el["tags-known"].replaceChildren(...hist.knownTags.map(({ tag }) => h("option", { value: tag })));
}
