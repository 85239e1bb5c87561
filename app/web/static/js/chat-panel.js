// The chat panel's elements and what is drawn in them: message bubbles, the bubble of a reply
// being written, the heading, the token count and the message box's buttons.

import { longTime, serverNow, shortDay } from "./dates.js";
import { bindElements, formatTime, h, show } from "./dom.js";
import { showMarkdown } from "./markdown.js";
import { footActions, syncActions } from "./message-actions.js";
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
    "stop", "chat-usage", "jump-latest", "char-count", "suggestions", "messages-log",
    "temporary-choice", "temporary-switch", "temporary-banner",
  ]);
  el["chat-scroll"].addEventListener("scroll", () => {
    if (nearBottom()) show(el["jump-latest"], false);
  }, { passive: true });
  el["jump-latest"].addEventListener("click", () => {
    scrollToEnd();
    el["composer-input"].focus();
  });
}

/** While a reply is written the log is busy: it speaks the reply once, when done. */
export function setBusy(busy) {
  el["messages-log"].setAttribute("aria-busy", String(busy));
  el.messages.setAttribute("aria-busy", String(busy));
}

/** What each message shown says, as written (Markdown for replies): what Copy copies. */
const sources = new WeakMap();

export function sourceOf(item) {
  return sources.get(item) ?? item.querySelector(".msg-text")?.textContent ?? "";
}

/** A message's text: replies and system messages as Markdown, the user's as typed. */
function fillText(box, role, content) {
  if (role === "user") box.textContent = content;
  else showMarkdown(box, content);
}

export function messageItem(message, { pending = false } = {}) {
  const mine = message.role === "user";
  const who = mine ? "You" : message.role === "assistant" ? "Assistant" : "System";
  const box = h("div", { class: "msg-text", dir: "auto" });
  fillText(box, message.role, message.content);
  const item = h(
    "li",
    { class: `msg msg-${message.role}${pending ? " msg-pending" : ""}`, dataset: { seq: message.seq ?? "" } },
    h("span", { class: "msg-who", text: who }),
    box,
  );
  sources.set(item, message.content);
  if (message.imageUrl) item.append(imageFor(message.imageUrl, `Image attached by the ${who.toLowerCase()}`));
  const foot = h(
    "div",
    { class: "msg-foot" },
    h("button", { type: "button", class: "msg-copy", "aria-label": `Copy the message of ${who === "You" ? "yours" : `the ${who.toLowerCase()}`}`, text: "Copy" }),
  );
  item.append(foot);
  setActions(item, message);
  if (message.createdAt) setTime(item, message.createdAt);
  return markStopped(item, message.seq, message.stopped);
}

/** A quiet line above the first message the model still reads in full, when it reads the
 *  ones before as a summary it wrote (`summarisedThrough`: the last seq the summary covers;
 *  null: none). Seqs grow along a path, so that message is the first shown after it. */
export function markSummarised(summarisedThrough) {
  el.messages.querySelector(":scope > li.summary-divider")?.remove();
  if (summarisedThrough === null || summarisedThrough === undefined) return;
  const first = [...el.messages.querySelectorAll(":scope > li.msg[data-seq]:not([data-seq=''])")].find(
    (item) => Number(item.dataset.seq) > summarisedThrough,
  );
  if (!first) return;
  first.before(
    h(
      "li",
      { class: "summary-divider", title: "The assistant reads the messages above as a summary it wrote." },
      h("span", { text: "Earlier messages summarised" }),
    ),
  );
}

/** The message's branch actions (Edit, Regenerate, the switcher) in its foot, once the
 *  server has told its seq and versions. */
export function setActions(item, message) {
  const foot = item.querySelector(":scope > .msg-foot");
  if (!foot) return;
  for (const old of foot.querySelectorAll(":scope > [data-act], :scope > .branch-switch")) old.remove();
  foot.append(...footActions(message));
}

/** A message's time: the time today, the day and the time before; the full date and time
 *  when hovered. */
export function timeOf(createdAt) {
  const at = Date.parse(createdAt || "");
  const today = !Number.isNaN(at) && new Date(at).toDateString() === new Date(serverNow()).toDateString();
  const text = today ? formatTime(createdAt) : `${shortDay(createdAt)}, ${formatTime(createdAt)}`;
  return h("time", { class: "msg-time", datetime: createdAt, title: longTime(createdAt), text });
}

/** Puts the message's time in its foot (once the server has told it). */
export function setTime(item, createdAt) {
  const foot = item.querySelector(":scope > .msg-foot");
  const time = timeOf(createdAt);
  item.querySelector(":scope > .msg-foot > .msg-time, :scope > .msg-time")?.remove();
  if (foot) foot.prepend(time);
  else item.append(time);
}

/** A reply stopped early says so, after its text. */
export function markStopped(item, seq, stopped = false) {
  if (stopped) chat.stoppedSeqs.add(seq); // as the server remembers it, after a reload too
  if (!chat.stoppedSeqs.has(seq) || item.classList.contains("msg-stopped")) return item;
  item.classList.add("msg-stopped");
  const time = item.querySelector(":scope > .msg-foot, :scope > .msg-time");
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

/** What a failed reply's note says first, by the problem's code. */
const FAILED_TITLES = {
  turn_interrupted: "Interrupted: the server stopped while writing this reply.",
  upstream_connection_refused: "The model could not be reached.",
  upstream_connection_reset: "The connection to the model broke off mid-reply.",
  upstream_timeout: "The model timed out.",
  upstream_rejected: "The model refused the request.",
};

/** The last reply failed (`failedTurn` of the conversation, or null): under the message it
 *  answered, what was written before it stopped, why it stopped and Retry. */
export function showFailed(failed) {
  for (const item of el.messages.querySelectorAll(":scope > .msg-failed")) item.remove();
  if (!failed || !shownItem(failed.userSeq) || el.messages.lastElementChild !== shownItem(failed.userSeq)) return;
  const item = h("li", { class: "msg msg-assistant msg-failed", dataset: { turn: failed.turnId } }, h("span", { class: "msg-who", text: "Assistant" }));
  if (failed.partialReply) {
    const box = h("div", { class: "msg-text", dir: "auto" });
    showMarkdown(box, failed.partialReply);
    item.append(box);
  }
  const title = FAILED_TITLES[failed.code] || "The reply failed.";
  item.append(
    h("p", { class: "msg-note msg-failed-note", role: "status" }, h("strong", { text: title }), " ", failed.detail.replace(/ ?Your message was saved; please (send it again|retry)\.$/, "")),
    h(
      "div",
      { class: "msg-foot" },
      h("button", { type: "button", class: "btn msg-retry", dataset: { seq: failed.userSeq }, text: "Retry", "aria-label": "Retry: write this reply again" }),
    ),
  );
  el.messages.append(item);
}

/** The assistant's bubble while a reply streams in: dots until the first words arrive. */
export function typingItem() {
  return h(
    "li",
    { class: "msg msg-assistant msg-typing msg-streaming", "aria-label": "The assistant is writing" },
    h("span", { class: "msg-who", text: "Assistant" }),
    h("div", { class: "msg-text", dir: "auto" }, h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i"))),
    // The room of the finished reply's foot (time and Copy), so nothing below moves then.
    h("div", { class: "msg-foot msg-foot-pending", "aria-hidden": "true" }),
  );
}

/** Shows the reply so far, as Markdown (sanitized: markdown.js), drawn at most once an
 *  animation frame however fast its pieces come. The view follows the reply only while it
 *  is scrolled to the end; otherwise "Jump to latest" appears. */
export function showPartial(turn) {
  if (turn.frame) return;
  turn.frame = window.requestAnimationFrame(() => {
    turn.frame = 0;
    drawPartial(turn);
  });
}

function drawPartial(turn) {
  const item = turn.bubble;
  const box = item.querySelector(".msg-text");
  if (!turn.text) {
    if (turn.queued) {
      // Waiting in line for the model: say where, in place of the dots.
      const ahead = turn.queued === 1 ? "You are next in line for the model." : `Waiting in line for the model: ${turn.queued - 1} ahead of you.`;
      item.classList.add("msg-typing");
      item.setAttribute("aria-label", ahead);
      box.replaceChildren(h("span", { class: "queued" }, ahead));
      return;
    }
    if (!item.classList.contains("msg-typing") || box.querySelector(".queued")) {
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
  const follow = nearBottom();
  showMarkdown(box, turn.text);
  if (follow) scrollToEnd();
  else show(el["jump-latest"], true);
}

/** Whether the conversation is scrolled to (about) its end. */
export function nearBottom() {
  const box = el["chat-scroll"];
  return box.scrollHeight - box.scrollTop - box.clientHeight < 48;
}

/** The shown message `seq`, if it is on screen. */
export function shownItem(seq) {
  return el.messages.querySelector(`:scope > li[data-seq="${Number(seq)}"]`);
}

/** The suggestions show in an empty new conversation, not while one is being opened (a
 *  reload or a sign-in would show them for a moment before its messages). */
export function updateEmpty() {
  show(el["empty-chat"], el.messages.children.length === 0 && !chat.viewing && !chat.loading);
}

/** The empty chat's suggestions (GET /api/assistant: by what the assistant does). A click
 *  puts the words in the message box, to send as they are or change first. */
export function setSuggestions(suggestions) {
  el.suggestions.replaceChildren(
    ...suggestions.map((text) =>
      h("li", {}, h("button", { type: "button", class: "btn btn-quiet", text, onclick: () => {
        el["composer-input"].value = text;
        updateCount();
        updateComposer();
        el["composer-input"].focus();
      } })),
    ),
  );
}

export function scrollToEnd() {
  const box = el["chat-scroll"];
  box.scrollTop = box.scrollHeight;
  show(el["jump-latest"], false);
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
  el["chat-usage"].textContent = `${count.format(total)} ${total === 1 ? "token" : "tokens"} used`;
  el["chat-usage"].title =
    "Tokens are the pieces of words the model reads and writes. In this conversation: " +
    `${count.format(usage.promptTokens)} read, ${count.format(usage.completionTokens)} written.`;
}

const COUNT_FROM = 0.9; // the counter shows from this share of the limit on

/** The message box's length in characters (code points, as the server counts them). */
export function typedLength() {
  const text = el["composer-input"].value;
  // A string's length is at least its number of code points: count only when it matters.
  return text.length < chat.maxChars * COUNT_FROM ? text.length : [...text].length;
}

/** The counter near the limit, and over it what is too much (the text stays as typed). */
export function updateCount() {
  const length = typedLength();
  const over = length - chat.maxChars;
  show(el["char-count"], length >= chat.maxChars * COUNT_FROM);
  el["char-count"].dataset.over = String(over > 0);
  el["char-count"].textContent =
    over > 0
      ? `${count.format(length)} / ${count.format(chat.maxChars)} characters: ${count.format(over)} too many to send`
      : `${count.format(length)} / ${count.format(chat.maxChars)} characters`;
  return over <= 0;
}

/** The message box: what can be sent now, and Stop in the place of Send while a reply is written. */
export function updateComposer() {
  const deleted = chat.closed === "deleted";
  const blocked = chat.sending || Boolean(chat.live) || chat.retryUntil > Date.now() || Boolean(chat.viewing) || deleted;
  el.send.disabled = blocked || typedLength() > chat.maxChars;
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
  syncActions(el.messages);
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

/** Puts <mark>s around every occurrence of one of `words` in the element's text (each text
 *  node on its own: the Markdown drawn around them stays). */
function markWords(box, words) {
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const finder = new RegExp(`(${escaped.join("|")})`, "giu");
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const parts = node.data.split(finder);
    if (parts.length < 2) continue;
    node.replaceWith(...parts.map((part, i) => (i % 2 ? h("mark", { text: part }) : part)));
  }
}
