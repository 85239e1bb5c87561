// How many messages are left (GET /api/me/limits), and the countdown after a 429.

import { ApiError, getJson } from "./api.js";
import { showError } from "./notices.js";
import { el, updateComposer } from "./chat-panel.js";
import { state } from "./state.js";

const chat = state.chat;

function periodOf(policy) {
  const seconds = policy.windowSeconds;
  if (seconds === 60) return "this minute";
  if (seconds === 3600) return "this hour";
  if (seconds === 86400) return "today";
  return `in the next ${seconds} seconds`;
}

export async function refreshQuota() {
  if (!state.user) return;
  const token = ++chat.quotaToken;
  try {
    const data = await getJson("/api/me/limits");
    if (token !== chat.quotaToken) return; // a newer answer is on its way
    const policies = data.policies.filter((p) => typeof p.remaining === "number");
    if (!policies.length) {
      el.quota.textContent = "";
      return;
    }
    const messages = policies.filter((p) => p.name === "chat");
    const shown = (messages.length ? messages : policies).slice().sort((a, b) => a.remaining - b.remaining).slice(0, 2);
    el.quota.textContent = shown
      .map((p) => `${p.remaining} ${p.remaining === 1 ? "message" : "messages"} left ${periodOf(p)}`)
      .join(" · ");
  } catch (err) {
    if (token !== chat.quotaToken || !(err instanceof ApiError) || err.status === 401) return;
    el.quota.textContent = ""; // limits not offered by this server
  }
}

function retryText(seconds) {
  if (seconds <= 0) return "You can send again now.";
  const at = new Date(Date.now() + seconds * 1000);
  const when = at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const wait = seconds === 1 ? "1 second" : `${seconds} seconds`;
  return `You're sending messages faster than your plan allows. Please wait ${wait} (until ${when}) and try again.`;
}

/** Over the limit: no sending for `seconds`, counted down under the message box. */
export function startRetryCountdown(seconds) {
  el.quota.dataset.limited = "true";
  chat.retryUntil = Date.now() + seconds * 1000;
  window.clearInterval(chat.retryTimer);
  const tick = () => {
    const left = Math.ceil((chat.retryUntil - Date.now()) / 1000);
    if (left <= 0) {
      window.clearInterval(chat.retryTimer);
      chat.retryTimer = null;
      chat.retryUntil = 0;
      showError("");
      el.quota.dataset.limited = "";
      refreshQuota();
      updateComposer();
      return;
    }
    showError(retryText(left));
  };
  tick();
  chat.retryTimer = window.setInterval(tick, 1000);
  updateComposer();
}
