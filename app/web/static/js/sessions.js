// Reading a conversation from the API: the session with all its messages, and its drafts.

import { ApiError, getJson } from "./api.js";

export const sessionPath = (id) => `/api/sessions/${encodeURIComponent(id)}`;

/** GET /api/sessions/{id}?drafts=true: the session, its messages after `afterSeq` (every
 *  page) and its drafts. A short conversation is one request. */
export async function fetchConversation(id, afterSeq = 0) {
  const url = `${sessionPath(id)}?drafts=true`;
  const first = await getJson(afterSeq ? `${url}&after_seq=${afterSeq}` : url);
  const messages = [...first.messages];
  let after = first.nextAfterSeq;
  while (after !== null) {
    const page = await getJson(`${sessionPath(id)}?after_seq=${after}`);
    messages.push(...page.messages);
    if (page.nextAfterSeq === after) break;
    after = page.nextAfterSeq;
  }
  const { drafts, ...conversation } = first;
  return { conversation: { ...conversation, messages }, drafts: drafts || [] };
}

/** On a device that never chose a conversation, the most recently active one. The list
 *  puts pinned conversations first: read until the first unpinned one (the newest of the
 *  rest), then take the newest of those seen. */
export async function mostRecentActive() {
  try {
    let best = null;
    let cursor = null;
    for (let pages = 0; pages < 5; pages++) {
      const url = `/api/sessions?status=active&limit=20&compact=true${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await getJson(url);
      for (const item of page.items) {
        if (!best || Date.parse(item.lastActivityAt) > Date.parse(best.lastActivityAt)) best = item;
        if (!item.pinned) return best.id;
      }
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    return best ? best.id : null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return null;
  }
}
