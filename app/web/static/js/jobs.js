// Jobs the server runs for this page (the ZIP of everything, imports): started with a
// POST that answers 202 at once, then followed until done. Live `job` events (GET
// /api/events) bring each change at once; a slow poll covers a stream that is down.

import { getJson } from "./api.js";

const POLL_MS = 2000;
/** jobId -> wake() of the loop following it. */
const following = new Map();

/** A `job` event from the live stream: the job's loop looks now. */
export function jobEvent(data) {
  const wake = data && following.get(data.jobId);
  if (wake) wake();
}

/** Follows a job until it is done or failed; onUpdate(job) hears every state seen.
 *  Resolves with the finished job. */
export async function followJob(statusUrl, jobId, onUpdate) {
  let wake = () => {};
  following.set(jobId, () => wake());
  try {
    for (;;) {
      const job = await getJson(statusUrl);
      onUpdate(job);
      if (job.status === "done" || job.status === "failed") return job;
      await new Promise((resolve) => {
        const timer = window.setTimeout(resolve, POLL_MS);
        wake = () => {
          window.clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    following.delete(jobId);
  }
}

/** How far a job is, as text, and as a percentage (null: not known yet). */
export function jobProgress(job) {
  const { done, total } = job.progress;
  if (job.status === "queued") return { text: "waiting for its turn", percent: null };
  if (total) return { text: `${Math.min(done, total)} of ${total} steps`, percent: Math.round((100 * Math.min(done, total)) / total) };
  return { text: done ? `${done} so far` : "started", percent: null };
}
