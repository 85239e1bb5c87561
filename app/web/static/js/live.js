// One stream per signed-in device (GET /api/events): what changed for this user, anywhere.
// EventSource reconnects by itself (sending Last-Event-ID); when the server refuses the
// stream, it is opened again after a pause for as long as someone is signed in.

import { state } from "./state.js";

const KINDS = ["message", "turn", "session", "job", "resync"];
const REOPEN_MS = 3000;

const live = state.live;
/** What the page does with the stream; set by startLive(). */
const handlers = { onReady() {}, onEvent() {}, onSignedOut() {} };

export function startLive(callbacks) {
  stopLive();
  Object.assign(handlers, callbacks);
  open();
}

export function stopLive() {
  window.clearTimeout(live.reopenTimer);
  live.reopenTimer = null;
  if (live.source) live.source.close();
  live.source = null;
}

function open() {
  const es = new EventSource("/api/events");
  live.source = es;
  // `ready` comes first on every (re)connection: what happened meanwhile may be missing.
  es.addEventListener("ready", () => handlers.onReady());
  for (const kind of KINDS) {
    es.addEventListener(kind, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handlers.onEvent(kind, data);
    });
  }
  // This device's sign-in ended (signed out here or elsewhere, password changed): the
  // server closed the stream; reopening it would only be refused.
  es.addEventListener("signed_out", () => {
    stopLive();
    handlers.onSignedOut();
  });
  es.addEventListener("error", () => {
    if (es !== live.source || es.readyState !== EventSource.CLOSED) return; // retrying by itself
    live.source = null;
    live.reopenTimer = window.setTimeout(open, REOPEN_MS);
  });
}
