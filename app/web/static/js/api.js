// Talking to the JSON API: cookie session, CSRF header, problem+json errors.

const CSRF_COOKIE = "chatkeep_csrf";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || problem.title || `Request failed (${status})`);
    this.status = status;
    this.problem = problem;
    this.code = problem.code || "";
    this.retryAfter = retryAfter;
  }
}

export function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** What the page does when the session has ended; set by setUnauthorizedHandler(). */
const hooks = { onUnauthorized: () => {} };
export function setUnauthorizedHandler(fn) {
  hooks.onUnauthorized = fn;
}

async function ensureCsrf() {
  // The server sets the cookie on any response; the page response normally did already.
  if (!readCookie(CSRF_COOKIE)) await fetch("/healthz", { credentials: "same-origin" }).catch(() => {});
  return readCookie(CSRF_COOKIE);
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return await response.json();
    } catch {
      /* fall through */
    }
  }
  return { title: response.statusText, detail: `The server answered ${response.status}.` };
}

function retryAfterSeconds(response) {
  const value = response.headers.get("retry-after");
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.round((at - Date.now()) / 1000));
}

/** fetch with the session cookie and, for state changes, the CSRF header.
 *  Returns the Response when ok; throws ApiError otherwise. */
export async function send(method, url, { json, form, body, signal, headers: extra, quiet401 = false } = {}) {
  const headers = { Accept: "application/json, application/problem+json", ...extra };
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (form !== undefined) {
    payload = new URLSearchParams(form);
  }
  if (UNSAFE.has(method)) headers["X-CSRF-Token"] = await ensureCsrf();
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "same-origin", signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { title: "Offline", detail: "Could not reach the server. Check your connection and try again." }, null);
  }
  if (response.ok) return response;
  const problem = await problemOf(response);
  const error = new ApiError(response.status, problem, retryAfterSeconds(response));
  if (response.status === 401 && !quiet401) hooks.onUnauthorized(error);
  // Other modules react to some problems wherever they happen (an unconfirmed email).
  if (error.code) document.dispatchEvent(new CustomEvent("chatkeep:problem", { detail: error }));
  throw error;
}

export async function getJson(url, options) {
  const response = await send("GET", url, options);
  return response.json();
}

export async function sendJson(method, url, json, options = {}) {
  const response = await send(method, url, { ...options, json });
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : null;
}
