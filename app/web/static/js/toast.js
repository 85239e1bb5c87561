// One toast at a time at the bottom of the screen: a short sentence and, often, Undo.
// The region (role=status) stays in the page so screen readers hear each new text; the
// toast waits while the pointer or focus is on it.

import { $, h } from "./dom.js";
import { state } from "./state.js";

const SHOWN_MS = 8000;
const AFTER_LEAVE_MS = 4000;


/** Shows `text`, with a button `action` running `onAction` (then the toast goes). */
export function showToast(text, { action = null, onAction = null, duration = SHOWN_MS } = {}) {
  hideToast();
  const region = $("toast");
  const body = h("div", { class: "toast-body" }, h("p", { class: "toast-text", text }));
  const toast = { body, timer: null, onAction };
  if (action) {
    const button = h("button", {
      type: "button",
      class: "btn btn-small toast-action",
      "aria-keyshortcuts": "Control+Z Meta+Z",
      title: "Ctrl+Z",
      text: action,
    });
    button.addEventListener("click", () => runAction(toast));
    body.append(button);
  }
  const close = h("button", { type: "button", class: "icon-btn toast-close", "aria-label": "Dismiss", text: "×" });
  close.addEventListener("click", () => hideToast(toast));
  body.append(close);
  const wait = () => window.clearTimeout(toast.timer);
  const resume = () => later(toast, AFTER_LEAVE_MS);
  body.addEventListener("mouseenter", wait);
  body.addEventListener("focusin", wait);
  body.addEventListener("mouseleave", resume);
  body.addEventListener("focusout", (event) => {
    if (!body.contains(event.relatedTarget)) resume();
  });
  region.append(body);
  state.toast = toast;
  later(toast, duration);
  return toast;
}

function later(toast, ms) {
  window.clearTimeout(toast.timer);
  toast.timer = window.setTimeout(() => hideToast(toast), ms);
}

async function runAction(toast) {
  if (state.toast !== toast) return;
  const { onAction } = toast;
  hideToast(toast);
  if (onAction) await onAction();
}

/** Hides the toast (or only `toast`, if it is still the one shown). */
export function hideToast(toast = state.toast) {
  if (!toast || toast !== state.toast) return;
  window.clearTimeout(toast.timer);
  const hadFocus = toast.body.contains(document.activeElement);
  toast.body.remove();
  state.toast = null;
  if (hadFocus) document.dispatchEvent(new CustomEvent("chatkeep:toast-closed"));
}

// Ctrl+Z (⌘Z) runs the toast's action while it is shown, outside text fields.
document.addEventListener("keydown", (event) => {
  if (!state.toast || !state.toast.onAction || event.key.toLowerCase() !== "z" || !(event.ctrlKey || event.metaKey)) return;
  if (event.shiftKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
    if (!(target instanceof HTMLInputElement && target.type === "checkbox")) return;
  }
  event.preventDefault();
  runAction(state.toast);
});
