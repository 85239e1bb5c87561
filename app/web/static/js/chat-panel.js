// The chat panel's elements and what is drawn in them: message bubbles, the bubble of a reply
// being written, the heading, the token count and the message box's buttons.

import { bindElements, formatTime, h, show } from "./dom.js";
import { state } from "./state.js";

const CARD_WIDTH = 1200;
const CARD_HEIGHT = 630;

const chat = state.chat;

/** The panel's elements, looked up once by bindPanel(). */
export const el = {};

export function bindPanel() {
  bindElements(el, [
    "messages", "chat-scroll", "empty-chat", "chat-error", "composer", "composer-input",
    "send", "quota", "chat-heading", "chat-notice", "chat-notice-text", "chat-notice-action",
    "chat-notice-close", "viewer-bar", "viewer-text", "viewer-continue", "viewer-back", "new-chat",
    "stop", "chat-usage",
  ]);
}

export function messageItem(message, { pending = false } = {}) {
  const mine = message.role === "user";
  const who = mine ? "You" : message.role === "assistant" ? "Assistant" : "System";
  const item = h(
    "li",
    { class: `msg msg-${message.role}${pending ? " msg-pending" : ""}`, dataset: { seq: message.seq ?? "" } },
    h("span", { class: "msg-who", text: who }),
    h("div", { class: "msg-text", dir: "auto", text: message.content }),
  );
  if (message.imageUrl) item.append(imageFor(message.imageUrl, `Image attached by the ${who.toLowerCase()}`));
  if (message.createdAt) item.append(timeOf(message.createdAt));
  return markStopped(item, message.seq, message.stopped);
}

export function timeOf(createdAt) {
  return h("time", { class: "msg-time", datetime: createdAt, text: formatTime(createdAt) });
}

/** A reply stopped early says so, after its text. */
export function markStopped(item, seq, stopped = false) {
  if (stopped) chat.stoppedSeqs.add(seq); // as the server remembers it, after a reload too
  if (!chat.stoppedSeqs.has(seq) || item.classList.contains("msg-stopped")) return item;
  item.classList.add("msg-stopped");
  const time = item.querySelector(":scope > .msg-time");
  const note = h("p", { class: "msg-note", text: "Stopped before the end" });
  if (time) time.before(note);
  else item.append(note);
  return item;
}

export function imageFor(url, alt) {
  const img = h("img", { src: url, alt, width: CARD_WIDTH, height: CARD_HEIGHT, loading: "lazy", decoding: "async" });
  img.addEventListener("error", () => {
    img.replaceWith(h("p", { class: "img-missing", text: "The image could not be loaded." }));
  });
  return img;
}

/** The assistant's bubble while a reply streams in: dots until the first words arrive. */
export function typingItem() {
  return h(
    "li",
    { class: "msg msg-assistant msg-typing msg-streaming", "aria-label": "The assistant is writing" },
    h("span", { class: "msg-who", text: "Assistant" }),
    h("div", { class: "msg-text", dir: "auto" }, h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i"))),
  );
}

/** Shows the reply so far. Model text only ever goes in as a text node. */
export function showPartial(turn) {
  const item = turn.bubble;
  const box = item.querySelector(".msg-text");
  if (!turn.text) {
    if (!item.classList.contains("msg-typing")) {
      item.classList.add("msg-typing");
      item.setAttribute("aria-label", "The assistant is writing");
      box.replaceChildren(h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")));
    }
    return;
  }
  if (item.classList.contains("msg-typing")) {
    item.classList.remove("msg-typing");
    item.removeAttribute("aria-label");
  }
  box.textContent = turn.text;
  scrollToEnd();
}

/** The shown message `seq`, if it is on screen. */
export function shownItem(seq) {
  return el.messages.querySelector(`:scope > li[data-seq="${Number(seq)}"]`);
}

export function updateEmpty() {
  show(el["empty-chat"], el.messages.children.length === 0 && !chat.viewing);
}

export function scrollToEnd() {
  const box = el["chat-scroll"];
  box.scrollTop = box.scrollHeight;
}

export function setHeading(text) {
  el["chat-heading"].textContent = text || "New conversation";
}

const count = new Intl.NumberFormat();

/** The conversation's token totals (`usage` of the API, or null), in the header, only once
 *  there are any. */
export function setUsage(usage) {
  const total = usage ? usage.totalTokens : 0;
  show(el["chat-usage"], total > 0);
  if (!total) return;
  el["chat-usage"].textContent = `${count.format(total)} ${total === 1 ? "token" : "tokens"}`;
  el["chat-usage"].title =
    `Tokens used in this conversation: ${count.format(usage.promptTokens)} read, ` +
    `${count.format(usage.completionTokens)} written`;
}

/** The message box: what can be sent now, and Stop in the place of Send while a reply is written. */
export function updateComposer() {
  const deleted = chat.closed === "deleted";
  const blocked = chat.sending || Boolean(chat.live) || chat.retryUntil > Date.now() || Boolean(chat.viewing) || deleted;
  el.send.disabled = blocked;
  el["composer-input"].disabled = Boolean(chat.viewing) || deleted;
  // While a reply is written, Stop takes the place of Send.
  const stoppable = Boolean(chat.live) && !chat.viewing;
  show(el.stop, stoppable);
  show(el.send, !stoppable);
  if (!stoppable) {
    el.stop.disabled = false;
    el.stop.textContent = "Stop";
  }
  for (const button of el.messages.querySelectorAll("button[data-say]")) button.disabled = blocked;
}

/** Scrolls to the message `seq` of the open conversation and marks it for a moment (a
 *  search result opened here), with `words` marked in its text. */
export function revealMessage(seq, words = []) {
  const item = shownItem(seq);
  if (!item) return false;
  const box = item.querySelector(".msg-text, .draft-text");
  if (box && words.length) markWords(box, words);
  item.classList.remove("msg-found");
  void item.offsetWidth; // restart the highlight when the same message is found again
  item.classList.add("msg-found");
  item.tabIndex = -1;
  item.scrollIntoView({ block: "center" });
  item.focus({ preventScroll: true });
  item.addEventListener("blur", () => item.removeAttribute("tabindex"), { once: true });
  return true;
}

/** Puts <mark>s around every occurrence of one of `words` in the element's text. */
function markWords(box, words) {
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const finder = new RegExp(`(${escaped.join("|")})`, "giu");
  const text = box.textContent;
  const parts = text.split(finder);
  if (parts.length < 2) return;
  box.replaceChildren(...parts.map((part, i) => (i % 2 ? h("mark", { text: part }) : part)));
}
