// Start-up, sign-in and the phone/desktop layout. Chat and history live in their modules.

import { ApiError, getJson, send, sendJson, setUnauthorizedHandler } from "./api.js";
import {
  catchUp,
  continueIn,
  exitViewer,
  forget,
  initChat,
  liveEvent,
  loadCurrent,
  openReadOnly,
  refreshQuota,
  renamed,
  resetChat,
  showNotice,
  viewedId,
} from "./chat.js";
import { $, show } from "./dom.js";
import { ensureFresh, initHistory, liveChanged, markStale, reload, resetHistory, restore } from "./history.js";
import { startLive, stopLive } from "./live.js";
import { setUser, state } from "./state.js";

const el = {};
let mode = "signin";

function setView(view) {
  state.view = view;
  el.workspace.dataset.view = view;
  for (const button of document.querySelectorAll(".view-btn")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
  if (view === "history") ensureFresh();
}

function setMode(next) {
  mode = next;
  const signup = mode === "signup";
  $("auth-heading").textContent = signup ? "Create your account" : "Sign in";
  $("auth-submit").textContent = signup ? "Create account" : "Sign in";
  $("auth-switch-text").textContent = signup ? "Already have an account?" : "New here?";
  $("auth-switch").textContent = signup ? "Sign in instead" : "Create an account";
  $("auth-password").setAttribute("autocomplete", signup ? "new-password" : "current-password");
  show($("auth-password-hint"), signup);
  $("auth-error").textContent = "";
}

function showAuth(message = "") {
  show($("boot"), false);
  show(el.workspace, false);
  show($("account"), false);
  show($("view-nav"), false);
  show(el.auth, true);
  $("auth-error").textContent = message;
  $("auth-email").focus();
}

async function showWorkspace(user) {
  setUser(user);
  show($("boot"), false);
  show(el.auth, false);
  $("who").textContent = user.email;
  show($("account"), true);
  show($("view-nav"), true);
  show(el.workspace, true);
  setView("chat");
  resetChat();
  resetHistory();
  await Promise.all([loadCurrent(), reload(), refreshQuota()]);
  followChanges();
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
      liveEvent(kind, data);
      if (kind !== "turn") liveChanged();
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
  if (!email || !password) {
    errorEl.textContent = "Please enter your email and password.";
    return;
  }
  if (mode === "signup" && password.length < 8) {
    errorEl.textContent = "The password must be at least 8 characters.";
    return;
  }
  const submit = $("auth-submit");
  submit.disabled = true;
  try {
    if (mode === "signup") await sendJson("POST", "/auth/register", { email, password }, { quiet401: true });
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
  showAuth("You are signed out.");
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
  initHistory({
    onOpen: async (item) => {
      setView("chat");
      await openReadOnly(item);
    },
    onRestored: async (id) => {
      setView("chat");
      await continueIn(id);
      reload();
    },
    onGone: (id, how) => {
      const wasCurrent = state.sessionId === id;
      const wasViewed = viewedId() === id;
      if (wasCurrent || wasViewed) {
        forget(id);
        if (wasCurrent && how === "archived") showNotice("That conversation is archived now; a new message starts a new one.");
      }
    },
    onRenamed: (id, title) => renamed(id, title),
  });

  $("auth-form").addEventListener("submit", submitAuth);
  $("auth-switch").addEventListener("click", () => setMode(mode === "signin" ? "signup" : "signin"));
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

  try {
    const user = await getJson("/users/me", { quiet401: true });
    await showWorkspace(user);
  } catch (err) {
    setMode("signin");
    showAuth(err instanceof ApiError && err.status !== 401 ? err.message : "");
  }
}

// Exposed for keyboard users coming back from the read-only view with Escape.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && viewedId() && !document.querySelector("dialog[open]")) exitViewer();
});

boot();
