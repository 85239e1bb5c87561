// Following a reply as it is written. A reply is a stream of events: `turn` first, `delta`s
// that add up to the text, then `done` or `error` (and `queued` while it waits in line for
// the model). Every event has an id; after a dropped
// connection the turn's events endpoint sends what came after the last id seen.

import { ApiError, send, sendJson } from "./api.js";
import { showError } from "./notices.js";
import { el, setBusy, showPartial, updateComposer } from "./chat-panel.js";
import { sessionPath } from "./sessions.js";
import { readEvents } from "./sse.js";
import { state } from "./state.js";

export const STREAM = "text/event-stream";
const RECONNECT_TRIES = 6;
// The server sends a heartbeat every 15 s by default: a stream silent for longer is dead.
const SILENCE_MS = 45_000;

const chat = state.chat;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        window.clearTimeout(timer);
        reject(new DOMException("Stopped following", "AbortError"));
      },
      { once: true },
    );
  });
}

function turnPath(turn) {
  return `${sessionPath(turn.sessionId)}/turns/${encodeURIComponent(turn.turnId)}`;
}

/** Opens the turn's events after `lastId` (all of them when null). */
export function followEvents(turn, lastId) {
  const headers = { Accept: STREAM };
  if (lastId !== null) headers["Last-Event-ID"] = lastId;
  return send("GET", `${turnPath(turn)}/events`, { headers, signal: turn.signal });
}

/** `turn` ({sessionId, turnId?, bubble, own, onStarted?}) is the reply shown being written. */
export function beginLive(turn) {
  chat.live = { text: "", stopping: false, abort: new AbortController(), ...turn };
  setBusy(true); // the log speaks the reply once, when done
  updateComposer();
  return chat.live;
}

export function endLive(turn) {
  if (chat.live === turn) chat.live = null;
  setBusy(false);
  updateComposer();
}

/** Stops reading the reply being written (it goes on on the server) and takes its bubble away. */
export function stopFollowing() {
  if (!chat.live) return;
  chat.live.abort.abort();
  chat.live.bubble.remove();
  endLive(chat.live);
}

/** Reads the turn's events until `done` or `error`, reconnecting after a dropped connection.
 *  `connect(lastId)` opens the stream. Returns the last event. */
export async function readTurn(turn, connect) {
  let lastId = null;
  let failures = 0;
  for (;;) {
    // One connection: given up when the turn is no longer shown, or when it falls silent.
    const attempt = new AbortController();
    const giveUp = () => attempt.abort();
    turn.abort.signal.addEventListener("abort", giveUp, { once: true });
    turn.signal = attempt.signal;
    let watchdog = window.setTimeout(giveUp, SILENCE_MS);
    const alive = () => {
      window.clearTimeout(watchdog);
      watchdog = window.setTimeout(giveUp, SILENCE_MS);
    };
    try {
      const final = await readConnection(turn, connect, lastId, alive, (id) => {
        lastId = id;
        failures = 0;
      });
      if (final) return final;
    } finally {
      window.clearTimeout(watchdog);
      turn.abort.signal.removeEventListener("abort", giveUp);
    }
    if (turn.abort.signal.aborted) throw new DOMException("Stopped following", "AbortError");
    failures += 1;
    if (failures > RECONNECT_TRIES) {
      throw new ApiError(0, { title: "Offline", detail: "The connection to the server was lost. Check your connection and reload the page." }, null);
    }
    await sleep(Math.min(8000, 500 * 2 ** (failures - 1)), turn.abort.signal);
  }
}

/** Reads one connection's events. Returns the final event, or null when the connection
 *  ended (or was never made) before it: the caller then tries again. */
async function readConnection(turn, connect, lastId, alive, seen) {
  let response = null;
  try {
    response = await connect(lastId);
  } catch (err) {
    if (turn.abort.signal.aborted) throw err;
    if (err.name === "AbortError") return null; // fell silent while connecting
    if (!(err instanceof ApiError) || err.status !== 0) throw err;
    return null;
  }
  try {
    for await (const event of readEvents(response, alive)) {
      if (event.id !== null) seen(event.id);
      if (event.event === "turn") {
        turn.text = ""; // the first event of a full replay
        onTurnStarted(turn, event.data);
      } else if (event.event === "queued") {
        turn.queued = event.data.position; // waiting in line for the model; null once it starts
        showPartial(turn);
      } else if (event.event === "delta") {
        turn.text += event.data.text;
        showPartial(turn);
      } else if (event.event === "error" && event.data?.code === "slow_reader") {
        return null; // dropped for reading too slowly, not a failed turn: go on from the last event
      } else if (event.event === "done" || event.event === "error") {
        return event;
      }
    }
  } catch (err) {
    if (turn.abort.signal.aborted) throw err;
    /* the connection dropped or fell silent: go on from the last event seen */
  }
  return null;
}

function onTurnStarted(turn, data) {
  turn.turnId = data.turnId;
  turn.sessionId = data.sessionId;
  if (turn.onStarted) turn.onStarted(data);
  if (turn.stopWanted) stopReply();
}

/** The Stop button: asks the server to stop the model; the stream then ends with `done`. */
export async function stopReply() {
  const turn = chat.live;
  if (!turn || turn.stopping) return;
  el.stop.disabled = true;
  el.stop.textContent = "Stopping…";
  if (!turn.turnId) {
    turn.stopWanted = true; // the turn's id is on its way
    return;
  }
  turn.stopping = true;
  try {
    await sendJson("POST", `${turnPath(turn)}/cancel`);
  } catch (err) {
    turn.stopping = false;
    if (chat.live === turn) {
      el.stop.disabled = false;
      el.stop.textContent = "Stop";
    }
    if (!(err instanceof ApiError && err.status === 401)) showError(err.message);
  }
}
