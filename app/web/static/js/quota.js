// How many messages and tokens are left (GET /api/me/limits, GET /api/me/usage), and the
// countdown after a 429 (a rate limit, or a token budget used up until it resets).

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

function tokensPeriod(budget) {
  return budget.period === "day" ? "today" : "this month";
}

async function messagesLeft() {
  try {
    const data = await getJson("/api/me/limits");
    const policies = data.policies.filter((p) => typeof p.remaining === "number");
    const messages = policies.filter((p) => p.name === "chat");
    return (messages.length ? messages : policies)
      .slice()
      .sort((a, b) => a.remaining - b.remaining)
      .slice(0, 2)
      .map((p) => `${p.remaining} ${p.remaining === 1 ? "message" : "messages"} left ${periodOf(p)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return []; // limits not offered by this server
  }
}

async function tokensLeft() {
  try {
    const data = await getJson("/api/me/usage");
    // The budget closest to its end: the one that refuses first.
    const limited = data.budgets.filter((b) => typeof b.remaining === "number");
    if (!limited.length) return [];
    const tightest = limited.slice().sort((a, b) => a.remaining - b.remaining)[0];
    const left = tightest.remaining.toLocaleString();
    return [`${left} ${tightest.remaining === 1 ? "token" : "tokens"} left ${tokensPeriod(tightest)}`];
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return []; // budgets not offered by this server
  }
}

export async function refreshQuota() {
  if (!state.user) return;
  const token = ++chat.quotaToken;
  try {
    const [messages, tokens] = await Promise.all([messagesLeft(), tokensLeft()]);
    if (token !== chat.quotaToken) return; // a newer answer is on its way
    el.quota.textContent = [...messages, ...tokens].join(" · ");
  } catch (err) {
    if (token !== chat.quotaToken) return;
    el.quota.textContent = "";
  }
}

function budgetText(problem) {
  const at = new Date(problem.resetAt);
  const when = at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  const which = problem.period === "month" ? "this month's" : "today's";
  return `You've used ${which} token budget. Nothing was saved; you can send again from ${when}.`;
}

function retryText(seconds, problem) {
  if (seconds <= 0) return "You can send again now.";
  if (problem?.code === "quota_exceeded" && problem.resetAt) return budgetText(problem);
  const at = new Date(Date.now() + seconds * 1000);
  const when = at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const wait = seconds === 1 ? "1 second" : `${seconds} seconds`;
  return `You're sending messages faster than your plan allows. Please wait ${wait} (until ${when}) and try again.`;
}

/** Over the limit: no sending for `seconds`, counted down under the message box
 * (`problem`, the 429's problem: a used-up token budget says until when). */
export function startRetryCountdown(seconds, problem = null) {
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
    showError(retryText(left, problem));
  };
  tick();
  chat.retryTimer = window.setInterval(tick, 1000);
  updateComposer();
}
