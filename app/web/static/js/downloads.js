// Downloads through fetch (so errors show as messages, not as broken files) and saving
// via a blob URL.

import { send } from "./api.js";
import { formatBytes } from "./dom.js";

export function filenameFrom(response, fallback) {
  const disposition = response.headers.get("content-disposition") || "";
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ""));
    } catch {
      /* fall through */
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1].trim() : fallback;
}

export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function downloadFile(url, fallbackName) {
  const response = await send("GET", url);
  const blob = await response.blob();
  saveBlob(blob, filenameFrom(response, fallbackName));
  return blob.size;
}

/** Streams a download, reporting progress({ received, total }) as bytes arrive. */
export async function downloadWithProgress(url, fallbackName, progress, signal) {
  const response = await send("GET", url, { signal });
  const total = Number(response.headers.get("content-length")) || 0;
  const type = response.headers.get("content-type") || "application/octet-stream";
  const chunks = [];
  let received = 0;
  progress({ received, total });
  if (response.body && response.body.getReader) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.byteLength;
      progress({ received, total });
    }
  } else {
    const buffer = await response.arrayBuffer();
    chunks.push(new Uint8Array(buffer));
    received = buffer.byteLength;
    progress({ received, total });
  }
  const name = filenameFrom(response, fallbackName);
  saveBlob(new Blob(chunks, { type }), name);
  return { received, name };
}

export function describeProgress({ received, total }) {
  if (total > 0) return `${formatBytes(received)} of ${formatBytes(total)}`;
  return `${formatBytes(received)} so far`;
}
