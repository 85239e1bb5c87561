// What the page knows: who is signed in, which conversation the chat continues.

const listeners = new Set();

export const state = {
  user: null,
  sessionId: null,
  view: "chat",
};

function key() {
  return state.user ? `chatkeep:session:${state.user.id}` : null;
}

export function setUser(user) {
  state.user = user;
  state.sessionId = null;
  if (user) {
    try {
      state.sessionId = localStorage.getItem(key()) || null;
    } catch {
      state.sessionId = null;
    }
  }
}

export function setSessionId(id) {
  state.sessionId = id || null;
  const k = key();
  if (!k) return;
  try {
    if (state.sessionId) localStorage.setItem(k, state.sessionId);
    else localStorage.removeItem(k);
  } catch {
    /* private mode: keep it in memory only */
  }
  for (const fn of listeners) fn(state.sessionId);
}

export function onSessionChange(fn) {
  listeners.add(fn);
}
