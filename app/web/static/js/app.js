// Start-up, sign-in and the phone/desktop layout. Chat and history live in their modules.

import { ApiError, getJson, send, sendJson, setUnauthorizedHandler } from "./api.js";
import { openBranchOf } from "./branches.js";
import { catchUp, liveEvent } from "./changes.js";
import { continueIn, exitViewer, forget, initChat, loadCurrent, openReadOnly, renamed, resetChat, setAssistant, viewedId } from "./chat.js";
import { $, show } from "./dom.js";
import { ensureFresh, initHistory, liveChanged, markStale, reload, resetHistory, restore } from "./history.js";
import { markedWords } from "./history-rows.js";
import { jobEvent } from "./jobs.js";
import { startLive, stopLive } from "./live.js";
import { showNotice } from "./notices.js";
import { revealMessage } from "./chat-panel.js";
import { refreshQuota } from "./quota.js";
import { initModels, loadModels } from "./models.js";
import { initSettings, loadApiKeys, loadRetention, loadSignIns } from "./settings.js";
import { initShare } from "./share.js";
import { setSessionId, setUser, state } from "./state.js";

const el = {};

function setView(view) {
  state.view = view;
  el.workspace.dataset.view = view;
  for (const button of document.querySelectorAll(".view-btn")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
  if (view === "history") ensureFresh();
}

function setMode(next) {
  state.authMode = next;
  const signup = state.authMode === "signup";
  $("auth-heading").textContent = signup ? "Create your account" : "Sign in";
  $("auth-submit").textContent = signup ? "Create account" : "Sign in";
  $("auth-switch-text").textContent = signup ? "Already have an account?" : "New here?";
  $("auth-switch").textContent = signup ? "Sign in instead" : "Create an account";
  $("auth-password").setAttribute("autocomplete", signup ? "new-password" : "current-password");
  show($("auth-password-hint"), signup);
  show($("auth-forgot-line"), !signup);
  $("auth-error").textContent = "";
}

/** Puts a <template id="NAME-template"> in the page (once) and returns its root #NAME. */
function mount(name) {
  let root = $(name);
  if (root) return root;
  const template = $(`${name}-template`);
  template.after(template.content.cloneNode(true));
  root = $(name);
  if (name === "recover") {
    $("forgot-form").addEventListener("submit", submitForgot);
    $("reset-form").addEventListener("submit", submitReset);
    $("recover-back").addEventListener("click", () => {
      history.replaceState(null, "", "/");
      setMode("signin");
      showAuth();
    });
  } else if (name === "settings") {
    $("settings-close").addEventListener("click", () => showSettings(false));
    initSettings({ onDeleted });
  }
  return root;
}

function unmount(name) {
  $(name)?.remove();
  if (name === "settings") {
    $("delete-dialog")?.remove();
    $("api-key-dialog")?.remove();
  }
}

function onDeleted() {
  stopLive();
  setUser(null);
  resetChat();
  resetHistory();
  setMode("signin");
  showAuth("Your account and everything in it are deleted.", { ok: true });
}

function showSettings(visible) {
  if (visible) show(mount("settings"), true);
  else unmount("settings");
  show(el.workspace, !visible);
  show($("view-nav"), !visible);
  $("open-settings").setAttribute("aria-pressed", String(visible));
  if (visible) {
    $("end-others-done").textContent = "";
    $("password-done").textContent = "";
    loadSignIns();
    loadApiKeys();
    loadRetention();
  }
}

/** The "Forgot password?" pages: ask for a link, or (from the link) set a new password. */
function showRecover(step, message = "") {
  show($("boot"), false);
  show(el.auth, false);
  show(mount("recover"), true);
  show($("forgot-form"), step === "forgot");
  show($("reset-form"), step === "reset");
  show($("recover-done"), Boolean(message));
  $("recover-done").textContent = message;
  $("forgot-error").textContent = "";
  $("reset-error").textContent = "";
  const focus = step === "forgot" ? $("forgot-email") : step === "reset" ? $("reset-password") : null;
  if (focus) focus.focus();
}

function tokenFromLink() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : "";
}

async function submitForgot(event) {
  event.preventDefault();
  const email = $("forgot-email").value.trim();
  if (!email) {
    $("forgot-error").textContent = "Please enter your email.";
    return;
  }
  try {
    await sendJson("POST", "/auth/forgot-password", { email }, { quiet401: true });
    showRecover("sent", `If an account exists for ${email}, we sent it a link to reset the password. Check your email.`);
  } catch (err) {
    $("forgot-error").textContent = err.message;
  }
}

async function submitReset(event) {
  event.preventDefault();
  const password = $("reset-password").value;
  if (!password) {
    $("reset-error").textContent = "Please choose a new password.";
    return;
  }
  try {
    await sendJson("POST", "/auth/reset-password", { token: state.resetToken, password }, { quiet401: true });
    $("reset-password").value = "";
    state.resetToken = "";
    history.replaceState(null, "", "/");
    setMode("signin");
    showAuth("Your password is changed. Sign in with the new one.", { ok: true });
  } catch (err) {
    $("reset-error").textContent = err.message;
  }
}

async function verifyFromLink(token) {
  history.replaceState(null, "", "/");
  try {
    await sendJson("POST", "/auth/verify", { token }, { quiet401: true });
    return { text: "Thank you: your email address is confirmed.", ok: true };
  } catch (err) {
    return { text: err.message, ok: false };
  }
}

async function resendVerification() {
  if (!state.user) return;
  const button = $("verify-resend");
  button.disabled = true;
  try {
    await sendJson("POST", "/auth/request-verify-token", { email: state.user.email });
    $("verify-text").textContent = `We sent a new link to ${state.user.email}. Open it, then send your message again.`;
  } catch (err) {
    $("verify-text").textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

/** The sign-in form, with a message above it: an error (red), or with `ok` news that
 *  went well (green: a success is never said in the colour of an error). */
function showAuth(message = "", { ok = false } = {}) {
  show($("boot"), false);
  unmount("recover");
  unmount("settings");
  show($("verify-banner"), false);
  show(el.workspace, false);
  show($("account"), false);
  show($("view-nav"), false);
  show(el.auth, true);
  $("auth-error").textContent = message;
  $("auth-error").dataset.tone = ok ? "ok" : "error";
  $("auth-email").focus();
}

async function showWorkspace(user) {
  setUser(user);
  show($("boot"), false);
  show(el.auth, false);
  unmount("recover");
  unmount("settings");
  show($("verify-banner"), false);
  $("who").textContent = user.email;
  show($("account"), true);
  show($("view-nav"), true);
  show(el.workspace, true);
  setView("chat");
  resetChat();
  resetHistory();
  await Promise.all([loadCurrent(), reload(), refreshQuota(), showAssistant()]);
  followChanges();
}

/** Names who answers (the model and where it runs), with a picker when there is a choice. */
async function showAssistant() {
  try {
    await loadModels();
    // Who answers, what to suggest in the empty chat, the longest message taken.
    setAssistant(await getJson("/api/assistant"));
  } catch {
    $("assistant-model").textContent = "";
  }
}

/** Live updates from every device of this user: the open conversation and the history. */
function followChanges() {
  let connections = 0;
  startLive({
    onReady() {
      connections += 1;
      catchUp(); // anything that happened before this (re)connection
      if (connections > 1) liveChanged();
    },
    onEvent(kind, data) {
      if (kind === "job") {
        jobEvent(data);
        return;
      }
      liveEvent(kind, data);
      if (kind !== "turn") liveChanged(kind);
    },
    // The server says this sign-in ended: one request finds out, and its 401 shows the
    // sign-in form (the unauthorized handler in boot()).
    onSignedOut() {
      getJson("/users/me").catch(() => {});
    },
  });
}

function authErrorText(err) {
  if (!(err instanceof ApiError)) return "Something went wrong. Please try again.";
  if (err.code === "register_user_already_exists") return "An account with this email already exists. Sign in instead.";
  if (err.code === "login_bad_credentials") return "Wrong email or password.";
  if (err.status === 422 && err.problem.errors) {
    const emailProblem = err.problem.errors.find((e) => /email/.test(e.location));
    if (emailProblem) return "Please enter a valid email address.";
  }
  return err.message;
}

async function submitAuth(event) {
  event.preventDefault();
  const email = $("auth-email").value.trim();
  const password = $("auth-password").value;
  const errorEl = $("auth-error");
  errorEl.textContent = "";
  errorEl.dataset.tone = "error";
  if (!email || !password) {
    errorEl.textContent = "Please enter your email and password.";
    return;
  }
  if (state.authMode === "signup" && password.length < 8) {
    errorEl.textContent = "The password must be at least 8 characters.";
    return;
  }
  const submit = $("auth-submit");
  submit.disabled = true;
  try {
    if (state.authMode === "signup") await sendJson("POST", "/auth/register", { email, password }, { quiet401: true });
    await send("POST", "/auth/cookie/login", { form: { username: email, password }, quiet401: true });
    const user = await getJson("/users/me", { quiet401: true });
    $("auth-password").value = "";
    await showWorkspace(user);
    $("composer-input").focus();
  } catch (err) {
    errorEl.textContent = authErrorText(err);
  } finally {
    submit.disabled = false;
  }
}

async function signOut() {
  try {
    await send("POST", "/auth/cookie/logout", { quiet401: true });
  } catch {
    /* signed out already */
  }
  stopLive();
  setUser(null);
  resetChat();
  resetHistory();
  setMode("signin");
  showAuth("You are signed out.", { ok: true });
}

async function boot() {
  el.auth = $("auth");
  el.workspace = $("workspace");
  setUnauthorizedHandler(() => {
    if (!state.user) return;
    stopLive();
    setUser(null);
    setMode("signin");
    showAuth("Your session has ended. Please sign in again.");
  });
  initChat({
    onTurn: () => markStale(),
    onOpenHistory: (status) => {
      const tab = document.querySelector(`[role="tab"][data-status="${status}"]`);
      if (tab) tab.click();
      setView("history");
      $("history-heading").scrollIntoView({ block: "nearest" });
    },
    onRestore: (id) => restore(id),
  });
  initShare();
  initModels();
  // The conversation the chat continued, when this device just moved it to the trash: an
  // Undo brings the chat back to it (unless a new one was started meanwhile).
  let trashedCurrent = null;
  initHistory({
    onOpen: async (item) => {
      setView("chat");
      // Active and archived conversations open ready to write (sending continues an
      // archived one); only one in the trash opens read-only.
      if (item.status === "trashed") await openReadOnly(item);
      else await continueIn(item.id, { focus: !item.matchSeq });
      // A search result opens at the message that matched, on its branch.
      if (item.matchSeq && item.matchOnPath === false) await openBranchOf(item.matchSeq);
      if (item.matchSeq) revealMessage(item.matchSeq, markedWords(item.snippet));
    },
    onRestored: async (id) => {
      setView("chat");
      await continueIn(id);
      reload();
    },
    onGone: (id, how) => {
      const wasCurrent = state.sessionId === id;
      const wasViewed = viewedId() === id;
      if (wasCurrent && how === "deleted") trashedCurrent = id;
      if (wasCurrent || wasViewed) {
        forget(id);
        if (wasCurrent && how === "archived") {
          showNotice("That conversation is archived now, in History under Archived: writing in it there continues it.", { linkToArchive: true });
        }
      }
    },
    onRenamed: (id, title) => renamed(id, title),
    onUndone: (ids) => {
      if (trashedCurrent && ids.includes(trashedCurrent) && !state.sessionId && !viewedId()) {
        setSessionId(trashedCurrent);
        loadCurrent();
      }
      trashedCurrent = null;
    },
  });

  document.addEventListener("chatkeep:problem", (event) => {
    if (event.detail.code === "email_not_verified" && state.user) show($("verify-banner"), true);
  });
  $("verify-resend").addEventListener("click", resendVerification);
  $("open-settings").addEventListener("click", () => showSettings(!$("settings")));
  $("auth-forgot").addEventListener("click", () => {
    const typed = $("auth-email").value.trim();
    showRecover("forgot");
    $("forgot-email").value = typed;
  });
  $("auth-form").addEventListener("submit", submitAuth);
  $("auth-switch").addEventListener("click", () => setMode(state.authMode === "signin" ? "signup" : "signin"));
  $("sign-out").addEventListener("click", signOut);
  for (const button of document.querySelectorAll(".view-btn")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.user) {
      markStale();
      refreshQuota();
    }
  });
  if (location.pathname === "/login") history.replaceState(null, "", "/");
  if (location.pathname === "/reset-password") {
    state.resetToken = tokenFromLink();
    history.replaceState(null, "", "/reset-password");  // the token leaves the address bar
    if (state.resetToken) {
      showRecover("reset");
      return;
    }
  }
  let notice = { text: "", ok: false };
  if (location.pathname === "/verify-email") notice = await verifyFromLink(tokenFromLink());

  try {
    // 200 whether signed in or not: a signed-out visit logs no failed request.
    const signIn = await getJson("/api/session", { quiet401: true });
    if (signIn.signedIn) {
      await showWorkspace(signIn.user);
      if (notice.text) showNotice(notice.text);
      return;
    }
    setMode("signin");
    showAuth(notice.text, { ok: notice.ok });
  } catch (err) {
    setMode("signin");
    if (notice.text) showAuth(notice.text, { ok: notice.ok });
    else showAuth(err instanceof ApiError && err.status !== 401 ? err.message : "");
  }
}

// Exposed for keyboard users coming back from the read-only view with Escape.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && viewedId() && !document.querySelector("dialog[open]")) exitViewer();
});

boot();
