// Settings: where you are signed in, change password, download your data, delete the account.

import { ApiError, getJson, send, sendJson } from "./api.js";
import { downloadFile } from "./downloads.js";
import { $, announce, formatDate, h } from "./dom.js";

/** What the page does after the account is deleted; set by initSettings(). */
const hooks = { onDeleted: () => {} };

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
    $("end-others").disabled = data.signIns.length < 2;
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
    $("end-others-done").textContent = n === 1 ? "Signed out of 1 other device." : `Signed out of ${n} other devices.`;
    await loadSignIns();
  } catch (err) {
    $("sign-ins-error").textContent = err.message;
    button.disabled = false;
  }
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
    $("password-done").textContent = "Your password is changed. Your other devices are signed out.";
    await loadSignIns();
  } catch (err) {
    error.textContent = err.message;
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
  $("password-form").addEventListener("submit", changePassword);
  $("download-data").addEventListener("click", downloadData);
  $("delete-account").addEventListener("click", openDelete);
  $("delete-confirm").addEventListener("input", () => {
    $("delete-ok").disabled = $("delete-confirm").value.trim() !== "DELETE";
  });
  $("delete-form").addEventListener("submit", submitDelete);
}
