// What the page knows: who is signed in, which conversation the chat continues, and what
// each part of the page shows or has under way. Every module keeps its changing values here,
// in its own section; modules themselves hold only constants, the elements they look up once
// and the callbacks they are given at start.

const listeners = new Set();

export const state = {
  user: null,
  sessionId: null,
  // False on a device that never picked a conversation: it opens the most recent active one.
  chosen: false,
  view: "chat",

  // The model picker (models.js): the models offered, the open conversation's model (null:
  // the default), the one picked for the next new conversation, and a change being stored.
  models: { list: [], conversation: null, picked: null, changing: Promise.resolve() },

  // The chat panel (chat.js and the modules it is made of).
  chat: {
    sending: false, // our message is on its way and its reply being read
    sendClickedAt: 0, // when Send was last clicked (ms): Stop ignores a click just after it
    retryUntil: 0, // over the rate limit: no sending before this time (ms)
    retryTimer: null,
    viewing: null, // a conversation opened read-only from History
    loadToken: 0, // grows whenever what is shown is replaced: older answers are dropped
    lastSeq: 0, // the newest message of the shown conversation
    live: null, // the reply being streamed into the shown conversation (ours or another device's)
    loading: false, // a conversation is being fetched to replace what is shown
    catchUpWanted: false, // something changed while busy: read the conversation again after
    catchUpChain: Promise.resolve(), // catch-ups run one at a time
    closed: null, // "archived" | "deleted": the shown conversation ended elsewhere
    temporary: false, // the shown conversation is temporary (deleted once idle, in no history)
    stoppedSeqs: new Set(), // replies of the shown conversation that were stopped early
    followed: new Set(), // turns whose stream already ended here: never followed twice
    draftIndex: new Map(), // reply seq -> { draft, version }
    latestDraft: null,
    quotaToken: 0, // the newest request for the limits: older answers are dropped
    maxChars: 32000, // the longest message the server takes (GET /api/assistant says)
  },

  // The history browser (history.js).
  history: {
    // The list shown: which tab, search and tag; how far it was read.
    list: {
      status: "active",
      q: "",
      tag: null,
      cursor: null,
      done: false,
      loading: false,
      generation: 0,
      stale: true,
      replace: false,
      limit: 20, // a page; a refresh reads again as many rows as are shown
    },
    shown: new Map(), // id -> summary of every row on screen
    selection: { ids: new Set(), anchor: null },
    knownTags: [],
    tagsStale: true, // the tag counts may have changed: read them with the next refresh
    tagsGeneration: 0,
    tagsSave: null, // what Save in the tags dialog does with the tags typed (async)
    observer: null,
    searchTimer: null,
    exporting: false,
    groupSeq: 0,
    liveTimer: null,
    liveWaitingSince: 0,
  },

  // The share dialog (share.js).
  share: {
    link: null, // {url, expiresAt} of the open conversation, when it has a live one
    sessionId: null, // the conversation the dialog is about
    busy: false,
    done: "", // what the last action did, said before the expiry
    confirming: false, // "Stop sharing" was clicked once: the next click stops it
  },

  // The event stream (live.js).
  live: { source: null, reopenTimer: null },

  // The toast (toast.js): { body, timer, onAction } of the one shown.
  toast: null,

  // The server's clock minus this browser's, in ms (dates.js).
  clockOffsetMs: 0,

  // The sign-in form (app.js): "signin" | "signup", and the token of a password-reset link.
  authMode: "signin",
  resetToken: "",
};

/** The open conversation: the one read-only in view, else the one the chat continues. */
export function openConversationId() {
  return state.chat.viewing ? state.chat.viewing.id : state.sessionId;
}

function key() {
  return state.user ? `chatkeep:session:${state.user.id}` : null;
}

export function setUser(user) {
  state.user = user;
  state.sessionId = null;
  state.chosen = false;
  if (user) {
    try {
      const stored = localStorage.getItem(key());
      state.sessionId = stored || null;
      state.chosen = stored !== null;
    } catch {
      state.sessionId = null;
    }
  }
}

export function setSessionId(id) {
  state.sessionId = id || null;
  state.chosen = true;
  const k = key();
  if (!k) return;
  try {
    // An empty value still says "this device chose": a new conversation, not the latest.
    localStorage.setItem(k, state.sessionId || "");
  } catch {
    /* private mode: keep it in memory only */
  }
  for (const fn of listeners) fn(state.sessionId);
}

export function onSessionChange(fn) {
  listeners.add(fn);
}
