// Server-sent events read from a fetch Response (EventSource cannot POST or send headers).

/** Yields {event, data, id} for each event of the stream; comments (heartbeats) are skipped,
 *  but every chunk read calls `onChunk`.
 *  `data` is the parsed JSON, or the raw text when it is not JSON. Ends when the body does. */
export async function* readEvents(response, onChunk = () => {}) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let frame = { event: "message", data: [], id: null };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onChunk(); // heartbeats count: the connection is alive
      buffer += value;
      let end;
      while ((end = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const line = buffer.slice(0, end);
        const crlf = buffer[end] === "\r" && buffer[end + 1] === "\n";
        // A lone \r at the very end may be half of \r\n: wait for the next chunk.
        if (buffer[end] === "\r" && end === buffer.length - 1) break;
        buffer = buffer.slice(end + (crlf ? 2 : 1));
        if (line === "") {
          if (frame.data.length) yield finish(frame);
          frame = { event: "message", data: [], id: frame.id }; // the id carries over
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") frame.event = text;
        else if (field === "data") frame.data.push(text);
        else if (field === "id") frame.id = text;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function finish(frame) {
  const raw = frame.data.join("\n");
  let data = raw;
  try {
    data = JSON.parse(raw);
  } catch {
    /* not JSON: keep the text */
  }
  return { event: frame.event, data, id: frame.id };
}
