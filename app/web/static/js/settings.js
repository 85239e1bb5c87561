// Settings: where you are signed in, API keys, deleting old conversations (retention),
// change password, download your data, delete the account.

import { ApiError, getJson, send, sendJson } from "./api.js";
import { downloadFile } from "./downloads.js";
import { $, announce, formatDate, h } from "./dom.js";

/** What the page does after the account is deleted; set by initSettings(). */
const hooks = { onDeleted: () => {} };
/** What "Sign out of other devices" would end: it revokes the API keys too. */
const state = { otherSignIns: 0, keys: 0 };

function updateEndOthers() {
  $("end-others").disabled = state.otherSignIns < 1 && state.keys < 1;
}

function kindLabel(kind) {
  return kind === "cookie" ? "Web browser" : "API client";
}

function signInRow(item) {
  const end = item.current
    ? h("span", { class: "badge", text: "This device" })
    : h("button", {
        type: "button",
        class: "btn btn-small",
        text: "Sign out",
        "aria-label": `Sign out ${item.device}`,
        onclick: async (event) => {
          event.target.disabled = true;
          try {
            await send("DELETE", `/api/me/sign-ins/${encodeURIComponent(item.id)}`);
            announce(`Signed out ${item.device}.`);
            await loadSignIns();
          } catch (err) {
            event.target.disabled = false;
            $("sign-ins-error").textContent = err.message;
          }
        },
      });
  return h(
    "li",
    { class: "sign-in", dataset: { id: item.id, current: String(item.current) } },
    h(
      "div",
      { class: "sign-in-text" },
      h("span", { class: "sign-in-device", text: item.device }),
      h("span", {
        class: "sign-in-meta",
        text: `${kindLabel(item.kind)} · ${item.ip} · last used ${formatDate(item.lastUsedAt)} · since ${formatDate(item.createdAt)}`,
      }),
    ),
    end,
  );
}

export async function loadSignIns() {
  const list = $("sign-ins");
  $("sign-ins-error").textContent = "";
  try {
    const data = await getJson("/api/me/sign-ins");
    list.replaceChildren(...data.signIns.map(signInRow));
    state.otherSignIns = data.signIns.length - 1;
    updateEndOthers();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) $("sign-ins-error").textContent = err.message;
  }
}

async function endOthers() {
  const button = $("end-others");
  button.disabled = true;
  try {
    const result = await sendJson("POST", "/api/me/sign-ins/end-others", {});
    const n = result.ended;
    let done = n === 1 ? "Signed out of 1 other device." : `Signed out of ${n} other devices.`;
    const k = result.keysEnded || 0;
    if (k) done += k === 1 ? " 1 API key revoked." : ` ${k} API keys revoked.`;
    $("end-others-done").textContent = done;
    await Promise.all([loadSignIns(), loadApiKeys()]);
  } catch (err) {
    $("sign-ins-error").textContent = err.message;
    button.disabled = false;
  }
}

// --- API keys -------------------------------------------------------------------------------

function apiKeyRow(item) {
  const used = item.lastUsedAt ? `last used ${formatDate(item.lastUsedAt)}` : "never used";
  return h(
    "li",
    { class: "sign-in api-key", dataset: { id: item.id } },
    h(
      "div",
      { class: "sign-in-text" },
      h("span", { class: "sign-in-device", text: item.name }),
      h("span", {
        class: "sign-in-meta",
        text: `${item.prefix}… · ${used} · created ${formatDate(item.createdAt)}`,
      }),
    ),
    h("button", {
      type: "button",
      class: "btn btn-small",
      text: "Revoke",
      "aria-label": `Revoke ${item.name}`,
      onclick: async (event) => {
        event.target.disabled = true;
        $("api-keys-error").textContent = "";
        try {
          await send("DELETE", `/api/keys/${encodeURIComponent(item.id)}`);
          announce(`API key ${item.name} revoked.`);
          await loadApiKeys();
        } catch (err) {
          event.target.disabled = false;
          $("api-keys-error").textContent = err.message;
        }
      },
    }),
  );
}

export async function loadApiKeys() {
  $("api-keys-error").textContent = "";
  try {
    const data = await getJson("/api/keys");
    $("api-keys").replaceChildren(...data.keys.map(apiKeyRow));
    $("api-keys-empty").hidden = data.keys.length > 0;
    state.keys = data.keys.length;
    updateEndOthers();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) $("api-keys-error").textContent = err.message;
  }
}

async function createApiKey(event) {
  event.preventDefault();
  const name = $("api-key-name");
  const error = $("api-keys-error");
  error.textContent = "";
  if (!name.value.trim()) {
    error.textContent = "Give the key a name.";
    return;
  }
  try {
    const made = await sendJson("POST", "/api/keys", { name: name.value.trim() });
    name.value = "";
    showNewKey(made.key);
    await loadApiKeys();
  } catch (err) {
    error.textContent = err.message;
  }
}

/** The copy-once dialog: the key is in the page only while it is open. */
function showNewKey(key) {
  $("api-key-value").value = key;
  $("api-key-status").textContent = "";
  $("api-key-dialog").showModal();
  $("api-key-value").select();
}

async function copyNewKey() {
  const box = $("api-key-value");
  try {
    await navigator.clipboard.writeText(box.value);
  } catch {
    // No clipboard access (permission, an insecure origin): leave it selected to copy.
    box.focus();
    box.select();
    $("api-key-status").textContent = "Press Ctrl+C (⌘C) to copy the selected key.";
    return;
  }
  $("api-key-status").textContent = "Key copied.";
  announce("Key copied.");
}

function forgetNewKey() {
  $("api-key-value").value = "";
  $("api-key-status").textContent = "";
}

async function changePassword(event) {
  event.preventDefault();
  const current = $("current-password");
  const next = $("new-password");
  const error = $("password-error");
  error.textContent = "";
  $("password-done").textContent = "";
  if (!current.value || !next.value) {
    error.textContent = "Please fill in both passwords.";
    return;
  }
  try {
    await sendJson("PATCH", "/users/me", { password: next.value, currentPassword: current.value });
    current.value = "";
    next.value = "";
    $("password-done").textContent =
      "Your password is changed. Your other devices are signed out; your API keys still work.";
    await loadSignIns();
  } catch (err) {
    error.textContent = err.message;
  }
}

function retentionChoice() {
  const value = $("retention-days").value;
  return value === "" ? null : Number(value);
}

function showRetentionRuns(runs) {
  $("retention-runs").replaceChildren(
    ...runs.map((run) =>
      h("li", {
        class: "sign-in-meta",
        text: `${formatDate(run.at)}: ${run.trashed} conversation${run.trashed === 1 ? "" : "s"} moved to the trash (older than ${run.days} days)`,
      }),
    ),
  );
}

export async function loadRetention() {
  $("retention-error").textContent = "";
  $("retention-preview").textContent = "";
  // A choice made before the saved one arrives would be overwritten by it.
  $("retention-days").disabled = true;
  try {
    const current = await getJson("/api/me/retention");
    $("retention-days").value = current.days === null ? "" : String(current.days);
    $("retention-days").dataset.saved = $("retention-days").value;
    $("retention-save").disabled = true;
    const max = $("retention-max");
    max.hidden = current.maxDays === null;
    max.textContent =
      current.maxDays === null
        ? ""
        : `On this server conversations are deleted after ${current.maxDays} days at most.`;
    showRetentionRuns(current.runs);
  } catch (err) {
    $("retention-error").textContent = err.message;
  } finally {
    $("retention-days").disabled = false;
  }
}

async function previewRetention() {
  const select = $("retention-days");
  $("retention-save").disabled = select.value === select.dataset.saved;
  $("retention-error").textContent = "";
  const days = retentionChoice();
  const query = days === null ? "" : `?days=${days}`;
  try {
    const preview = await getJson(`/api/me/retention/preview${query}`);
    const n = preview.conversations;
    $("retention-preview").textContent =
      preview.effectiveDays === null
        ? "Nothing will be deleted."
        : `This will delete ${n} conversation${n === 1 ? "" : "s"} now.`;
  } catch (err) {
    $("retention-error").textContent = err.message;
  }
}

async function saveRetention() {
  $("retention-error").textContent = "";
  try {
    await sendJson("PUT", "/api/me/retention", { days: retentionChoice() });
    announce("Your retention setting is saved.");
    await loadRetention();
    $("retention-preview").textContent = "Saved.";
  } catch (err) {
    $("retention-error").textContent = err.message;
  }
}

async function downloadData() {
  const button = $("download-data");
  button.disabled = true;
  $("data-error").textContent = "";
  try {
    await downloadFile("/api/me/data", "chatkeep-my-data.zip");
    announce("Your data is downloaded.");
  } catch (err) {
    $("data-error").textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

function openDelete() {
  const dialog = $("delete-dialog");
  $("delete-confirm").value = "";
  $("delete-password").value = "";
  $("delete-error").textContent = "";
  $("delete-ok").disabled = true;
  dialog.showModal();
}

async function submitDelete(event) {
  const dialog = $("delete-dialog");
  if (event.submitter && event.submitter.value !== "confirm") return;
  event.preventDefault();
  if ($("delete-confirm").value.trim() !== "DELETE") {
    $("delete-error").textContent = "Type DELETE to confirm.";
    return;
  }
  try {
    await send("DELETE", "/users/me", { json: { currentPassword: $("delete-password").value } });
    dialog.close();
    hooks.onDeleted();
  } catch (err) {
    $("delete-error").textContent = err.message;
  }
}

export function initSettings(options) {
  Object.assign(hooks, options);
  $("end-others").addEventListener("click", endOthers);
  $("api-key-form").addEventListener("submit", createApiKey);
  $("api-key-copy").addEventListener("click", copyNewKey);
  $("api-key-done").addEventListener("click", () => $("api-key-dialog").close());
  $("api-key-dialog").addEventListener("close", forgetNewKey);
  $("password-form").addEventListener("submit", changePassword);
  $("download-data").addEventListener("click", downloadData);
  $("retention-days").addEventListener("change", previewRetention);
  $("retention-save").addEventListener("click", saveRetention);
  $("delete-account").addEventListener("click", openDelete);
  $("delete-confirm").addEventListener("input", () => {
    $("delete-ok").disabled = $("delete-confirm").value.trim() !== "DELETE";
  });
  $("delete-form").addEventListener("submit", submitDelete);
}
