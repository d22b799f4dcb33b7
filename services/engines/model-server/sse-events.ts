/**
 * Reads a `text/event-stream` body (the Server-Sent Events of OpenAI-compatible streaming APIs)
 * into the `data` of each event, as the bytes arrive.
 */

/** Longest single event accepted, in bytes; a server that never ends an event fails the call. */
export const MAX_SSE_EVENT_BYTES = 1024 * 1024;

/**
 * Yields the `data` of each event of `body` (lines joined with `\n`), in order. Comments (`:`),
 * `event:`, `id:` and `retry:` lines are skipped. Throws `RangeError` for an event over
 * {@link MAX_SSE_EVENT_BYTES}.
 */
export async function* readSseData(body: AsyncIterable<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  const flushLine = function* (line: string): Generator<string> {
    if (line === "") {
      if (data.length > 0) yield data.join("\n");
      data = [];
      return;
    }
    if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  };
  for await (const piece of body) {
    buffer += decoder.decode(piece, { stream: true });
    let newline = buffer.search(/\r\n|\n|\r/);
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      const width = buffer.startsWith("\r\n", newline) ? 2 : 1;
      buffer = buffer.slice(newline + width);
      yield* flushLine(line);
      newline = buffer.search(/\r\n|\n|\r/);
    }
    if (buffer.length + data.reduce((n, d) => n + d.length, 0) > MAX_SSE_EVENT_BYTES) {
      throw new RangeError(`an event of the stream passed ${MAX_SSE_EVENT_BYTES} bytes`);
    }
  }
  buffer += decoder.decode();
  if (buffer) yield* flushLine(buffer);
  yield* flushLine("");
}
