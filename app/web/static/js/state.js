// What the page knows: who is signed in, which conversation the chat continues.

const listeners = new Set();

export const state = {
  user: null,
  sessionId: null,
  // False on a device that never picked a conversation: it opens the most recent active one.
  chosen: false,
  view: "chat",
};

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
