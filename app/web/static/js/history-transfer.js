// Export everything (a ZIP) and import a file of conversations, both as jobs on the
// server: the page starts the job, shows its progress, then downloads the ZIP (from
// whichever instance answers) or shows what the import did.

import { ApiError, send } from "./api.js";
import { announce, show } from "./dom.js";
import { describeProgress, downloadWithProgress } from "./downloads.js";
import { el, reportError } from "./history-panel.js";
import { followJob, jobProgress } from "./jobs.js";
import { state } from "./state.js";

const hist = state.history;
/** What the history does after an import; set once by initTransfer(). */
const hooks = { onImported() {} };

export function initTransfer(callbacks) {
  Object.assign(hooks, callbacks);
  el["export-all"].addEventListener("click", exportAll);
  el["import-file"].addEventListener("change", importFile);
}

function showTransfer(text, progress) {
  show(el.transfer, true);
  el["transfer-text"].textContent = text;
  const bar = el["transfer-progress"];
  if (progress === undefined) bar.hidden = true;
  else {
    bar.hidden = false;
    if (progress === null) bar.removeAttribute("value");
    else bar.value = progress;
  }
}

async function exportAll() {
  if (hist.exporting) return;
  hist.exporting = true;
  el["export-all"].disabled = true;
  el["history-error"].textContent = "";
  showTransfer("Preparing your export…", null);
  try {
    const started = await (await send("POST", "/api/export/jobs?format=zip&status=all")).json();
    const job = await followJob(started.statusUrl, started.jobId, (j) => {
      const { text, percent } = jobProgress(j);
      showTransfer(`Preparing your export: ${text}`, percent);
    });
    if (job.status !== "done") throw jobFailure(job);
    const { received, name } = await downloadWithProgress(job.downloadUrl, "chatkeep-export.zip", (p) => {
      showTransfer(`Downloading export: ${describeProgress(p)}`, p.total ? Math.round((100 * p.received) / p.total) : null);
    });
    showTransfer(`Export saved as ${name} (${describeProgress({ received, total: 0 }).replace(" so far", "")}).`);
  } catch (err) {
    show(el.transfer, false);
    reportError(err);
  } finally {
    hist.exporting = false;
    el["export-all"].disabled = false;
  }
}

/** A failed job's error, shown like a refused request. */
function jobFailure(job) {
  const error = job.error || { code: "job_failed", detail: "The job failed. Please try again." };
  return new ApiError(500, { title: "Job failed", ...error });
}

/** What POST /api/import did: `{imported, skipped, sessions, failed}`. */
function importSummary(result) {
  const parts = [];
  const { imported, skipped, failed } = result;
  // Imported conversations are archived (their time was then): say so, and show them.
  parts.push(`${imported} ${imported === 1 ? "conversation" : "conversations"} imported${imported ? " into Archived" : ""}`);
  if (skipped) parts.push(`${skipped} already here, skipped`);
  if (failed.length) {
    const names = failed.map((f) => `“${f.title || f.sourceId || `entry ${f.index + 1}`}”`).join(", ");
    parts.push(`${failed.length} could not be read and ${failed.length === 1 ? "was" : "were"} left out: ${names}`);
  }
  return `Import finished: ${parts.join(", ")}.`;
}

async function importFile() {
  const input = el["import-file"];
  const file = input.files && input.files[0];
  if (!file) return;
  el["history-error"].textContent = "";
  showTransfer(`Importing ${file.name}…`, null);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const started = await (await send("POST", "/api/import/jobs", { body: form })).json();
    const job = await followJob(started.statusUrl, started.jobId, (j) => {
      const text = j.status === "queued" ? jobProgress(j).text : `${j.progress.done} conversations read`;
      showTransfer(`Importing ${file.name}: ${text}`, null);
    });
    if (job.status !== "done") throw jobFailure(job);
    const result = job.result;
    showTransfer(importSummary(result));
    announce(importSummary(result));
    hooks.onImported(result);
  } catch (err) {
    show(el.transfer, false);
    reportError(err);
  } finally {
    input.value = "";
  }
}
