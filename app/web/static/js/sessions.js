// Reading a conversation from the API: the session with all its messages, and its drafts.

import { ApiError, getJson } from "./api.js";
import { fetchDrafts } from "./drafts.js";

export const sessionPath = (id) => `/api/sessions/${encodeURIComponent(id)}`;

/** GET /api/sessions/{id}: the session and its messages after `afterSeq`, every page. */
export async function fetchMessages(id, afterSeq = 0) {
  const url = sessionPath(id);
  const first = await getJson(afterSeq ? `${url}?after_seq=${afterSeq}` : url);
  const messages = [...first.messages];
  let after = first.nextAfterSeq;
  while (after !== null) {
    const page = await getJson(`${url}?after_seq=${after}`);
    messages.push(...page.messages);
    if (page.nextAfterSeq === after) break;
    after = page.nextAfterSeq;
  }
  return { ...first, messages };
}

/** The session with its messages after `afterSeq`, and its drafts. */
export async function fetchConversation(id, afterSeq = 0) {
  const [conversation, drafts] = await Promise.all([fetchMessages(id, afterSeq), fetchDrafts(id)]);
  return { conversation, drafts };
}

/** On a device that never chose a conversation, the most recent active one. */
export async function mostRecentActive() {
  try {
    const page = await getJson("/api/sessions?status=active&limit=1");
    return page.items[0]?.id || null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return null;
  }
}
