// What other devices change in the open conversation: new messages, drafts, title and usage,
// a reply being written there (followed as it grows), and the conversation ending elsewhere.

import { ApiError } from "./api.js";
import { drawPath, shownHead } from "./branches.js";
import { indexDrafts, refreshCards, renderItem } from "./drafts.js";
import { ARCHIVED_NOTE, hideNotice, showError, showNotice } from "./notices.js";
import {
  el,
  markSummarised,
  scrollToEnd,
  setHeading,
  setUsage,
  showFailed,
  shownItem,
  typingItem,
  updateComposer,
  updateEmpty,
} from "./chat-panel.js";
import { fetchConversation } from "./sessions.js";
import { openConversationId, state } from "./state.js";
import { beginLive, endLive, followEvents, readTurn, stopFollowing } from "./stream.js";

const chat = state.chat;

/** A reply is still being written in the open conversation (another device, or before a
 *  reload): show it as it grows, then the stored messages. */
export function resumeActive(sessionId, activeTurn) {
  if (!activeTurn || activeTurn.status !== "generating" || chat.live || chat.sending) return;
  if (openConversationId() !== sessionId || chat.followed.has(activeTurn.turnId) || chat.closed === "deleted") return;
  followTurn(sessionId, activeTurn.turnId);
}

async function followTurn(sessionId, turnId) {
  const token = chat.loadToken;
  const bubble = typingItem();
  el.messages.append(bubble);
  updateEmpty();
  scrollToEnd();
  const turn = beginLive({ sessionId, turnId, bubble, own: false });
  let final = null;
  try {
    final = await readTurn(turn, (lastId) => followEvents(turn, lastId));
  } catch (err) {
    if (err.name === "AbortError") return;
    if (token === chat.loadToken && !(err instanceof ApiError && (err.status === 401 || err.status === 404))) showError(err.message);
  } finally {
    endLive(turn);
  }
  chat.followed.add(turnId);
  if (token !== chat.loadToken) return;
  // A failed reply (interrupted by a crash, a model error) is shown from the stored
  // conversation that the catch-up reads: what was written, why it stopped, and Retry.
  if (final?.event === "error") bubble.remove();
  if (final?.event === "done" && final.data.stopped) chat.stoppedSeqs.add(final.data.seq);
  await catchUp();
}

/** Reads what is new in the open conversation (messages after the last shown, drafts,
 *  title, usage) and shows it; follows a reply still being written there. One at a time. */
export function catchUp() {
  chat.catchUpChain = chat.catchUpChain.then(readNew, readNew);
  return chat.catchUpChain;
}

async function readNew() {
  const id = openConversationId();
  if (!id || !state.user) return;
  if (chat.sending || chat.live || chat.loading) {
    chat.catchUpWanted = true; // done when the turn or load in progress ends
    return;
  }
  chat.catchUpWanted = false;
  const token = chat.loadToken;
  let conversation;
  let drafts;
  try {
    ({ conversation, drafts } = await fetchConversation(id, chat.lastSeq));
  } catch (err) {
    if (token === chat.loadToken && err instanceof ApiError && err.status === 404) markClosed(id, "deleted");
    return;
  }
  if (token !== chat.loadToken || openConversationId() !== id || chat.sending || chat.live) {
    if (token === chat.loadToken) chat.catchUpWanted = true;
    return;
  }
  const head = shownHead();
  const first = conversation.messages[0];
  if (conversation.headSeq !== head && !(first && (first.parentSeq ?? null) === head)) {
    // The head moved to another version (or a new branch grew there): the path is another.
    // A reply written there meanwhile is followed as the new reading tells, not the old.
    const drawn = await redraw(id, token);
    if (drawn) resumeActive(id, drawn.activeTurn);
    return;
  }
  setHeading(conversation.title);
  setUsage(conversation.usage);
  indexDrafts(drafts);
  const fresh = conversation.messages.filter((m) => m.seq > chat.lastSeq && !shownItem(m.seq));
  // A finished reply's streamed bubble gives way to the stored message.
  if (fresh.length) for (const bubble of el.messages.querySelectorAll(":scope > .msg-streaming")) bubble.remove();
  el.messages.append(...fresh.map((m) => renderItem(m)));
  markSummarised(conversation.summarisedThrough);
  chat.lastSeq = conversation.messages.reduce((max, m) => Math.max(max, m.seq), chat.lastSeq);
  refreshCards();
  updateEmpty();
  showFailed(conversation.failedTurn);
  if (fresh.length) scrollToEnd();
  const viewingTrash = chat.viewing && chat.viewing.status === "trashed"; // read-only there
  if (conversation.status === "trashed" && !viewingTrash) markClosed(id, "deleted");
  else if (conversation.status !== "active" && !chat.viewing && id === state.sessionId) {
    if (chat.closed === "deleted") chat.closed = null; // back from the trash, as archived
    markClosed(id, "archived");
  }
  else if (conversation.status === "active" && chat.closed && !chat.viewing) reopened();
  resumeActive(id, conversation.activeTurn);
}

/** Draws the open conversation's active path again, whole; returns what it drew. */
async function redraw(id, token) {
  let found;
  try {
    found = await fetchConversation(id);
  } catch {
    return null;
  }
  if (token !== chat.loadToken || openConversationId() !== id || chat.sending || chat.live) {
    if (token === chat.loadToken) chat.catchUpWanted = true;
    return null;
  }
  drawPath(found.conversation, found.drafts);
  if (found.conversation.status !== "active" && !chat.viewing && id === state.sessionId) markClosed(id, "archived");
  return found.conversation;
}

/** An event from /api/events (this user's, from any device). */
export function liveEvent(kind, data) {
  if (!data || !state.user) return;
  if (kind === "resync") {
    catchUp();
    return;
  }
  if (data.sessionId !== openConversationId()) return;
  if (kind === "message" || kind === "turn") {
    catchUp();
  } else if (kind === "session") {
    if (data.change === "deleted" || data.change === "trashed") markClosed(data.sessionId, "deleted");
    else if (data.change === "archived") markClosed(data.sessionId, "archived");
    else catchUp();
  }
}

/** The open conversation is active again (restored, or its deletion undone, on another
 *  device): it goes on here as if nothing happened. */
function reopened() {
  chat.closed = null;
  hideNotice();
  refreshCards();
  updateComposer();
}

/** The open conversation was archived (it expired) or deleted, here or on another device. */
export function markClosed(id, how) {
  if (openConversationId() !== id || chat.closed === how || (chat.closed === "deleted" && how === "archived")) return;
  if (how === "archived" && chat.viewing) {
    chat.viewing.status = "archived"; // a read-only view stays one
    refreshCards();
    return;
  }
  chat.closed = how;
  if (how === "deleted") {
    // The id stays until the user starts anew: a reload then finds it gone (404) and starts
    // fresh, and a deletion made on this device clears the view through forget().
    stopFollowing();
    showNotice("This conversation was deleted on another device. If it is restored there, it comes back here; or start a new conversation.");
  } else {
    showNotice(ARCHIVED_NOTE);
  }
  refreshCards();
  updateComposer();
}
