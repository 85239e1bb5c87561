// Which model answers (GET /api/models): the picker under the message box, the model a new
// conversation takes, and switching the open one (PATCH /api/sessions/{id}).

import { ApiError, getJson, sendJson } from "./api.js";
import { $ } from "./dom.js";
import { showError } from "./notices.js";
import { state } from "./state.js";

const models = state.models;

function defaultModel() {
  return models.list.find((m) => m.default) || models.list[0] || null;
}

function byId(id) {
  return models.list.find((m) => m.id === id) || null;
}

/** The model shown: the conversation's, else the one picked for a new one, else the default. */
function shownModel() {
  return byId(models.conversation) || (state.sessionId ? null : byId(models.picked)) || defaultModel();
}

function render() {
  const picker = $("model-picker");
  const line = $("assistant-model");
  const shown = shownModel();
  line.textContent = shown ? `Answers by ${shown.label}` : "";
  $("model-choice").hidden = models.list.length < 2;
  if (shown) picker.value = shown.id;
}

/** Reads the models and fills the picker (shown only when there is a choice). */
export async function loadModels() {
  const picker = $("model-picker");
  try {
    const data = await getJson("/api/models");
    models.list = data.models;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    models.list = [];
  }
  picker.replaceChildren(
    ...models.list.map((m) => {
      const option = document.createElement("option");
      option.value = m.id;
      option.textContent = m.name;
      return option;
    }),
  );
  render();
}

/** The open conversation changed: `model` is its model (null: the default). */
export function showConversationModel(model) {
  models.conversation = model || null;
  render();
}

/** Resolves once a change of the open conversation's model is stored (a message sent
 * right after choosing goes to the model chosen). */
export function modelSettled() {
  return models.changing;
}

/** What `model` a new conversation sends: the one picked, when it is not the default. */
export function modelForNewConversation() {
  const picked = byId(models.picked);
  return picked && !picked.default ? picked.id : null;
}

/** A new conversation was made with the picked model: it is now that conversation's. */
export function conversationStarted() {
  models.conversation = modelForNewConversation();
  render();
}

async function picked(event) {
  const id = event.target.value;
  if (!state.sessionId || state.chat.viewing) {
    models.picked = id; // the next new conversation takes it
    render();
    return;
  }
  const sessionId = state.sessionId;
  const before = models.conversation;
  models.conversation = id;
  render();
  const change = sendJson("PATCH", `/api/sessions/${encodeURIComponent(sessionId)}`, { model: id });
  models.changing = change.catch(() => {});
  try {
    await change;
  } catch (err) {
    if (state.sessionId === sessionId) {
      models.conversation = before;
      render();
      showError(err.message);
    }
  }
}

export function initModels() {
  $("model-picker").addEventListener("change", picked);
}
