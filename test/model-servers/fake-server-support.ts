/**
 * Shared parts of the fake model servers: a recorded request, bounded JSON body reading, and
 * sending a body in pieces with optional pauses and a gate, so tests can watch streaming happen.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** One request a fake server received. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path with query. */
  path: string;
  /** Request headers (lowercase names). */
  headers: IncomingMessage["headers"];
  /** Parsed JSON body; undefined for none. */
  body: unknown;
  /** Status answered. */
  status: number;
  /** Bytes of the answer body written so far. */
  bytesSent: number;
  /** Whether the whole answer was sent. */
  completed: boolean;
  /** Whether the client closed the connection before the answer was complete. */
  closedEarly: boolean;
  /** Resolves when the connection of this request is closed (either way). */
  closed: Promise<void>;
}

/** How an answer body is sent. */
export interface PieceOptions {
  /** Bytes per write. */
  pieceBytes: number;
  /** Pause between writes, in ms. */
  pieceDelayMs: number;
  /** When set, everything after the first piece waits for this promise. */
  gate: Promise<void> | undefined;
}

/** Starts recording `req`; the record's close fields update as the connection ends. */
export function record(req: IncomingMessage, res: ServerResponse): RecordedRequest {
  let resolveClosed!: () => void;
  const entry: RecordedRequest = {
    method: req.method ?? "",
    path: req.url ?? "",
    headers: req.headers,
    body: undefined,
    status: 0,
    bytesSent: 0,
    completed: false,
    closedEarly: false,
    closed: new Promise((resolve) => {
      resolveClosed = resolve;
    }),
  };
  res.on("close", () => {
    entry.completed = res.writableFinished;
    entry.closedEarly = !res.writableFinished;
    resolveClosed();
  });
  return entry;
}

/** Reads a JSON body of at most `maxBytes`; undefined for an empty body. */
export async function readJson(
  req: IncomingMessage,
  maxBytes = 256 * 1024 * 1024,
): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new Error("request body too large");
    chunks.push(chunk);
  }
  if (total === 0) return undefined;
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
}

/** Answers `status` with a JSON body. */
export function sendJson(
  res: ServerResponse,
  entry: RecordedRequest,
  status: number,
  value: unknown,
): void {
  const text = JSON.stringify(value);
  entry.status = status;
  res.writeHead(status, { "content-type": "application/json" });
  entry.bytesSent = Buffer.byteLength(text);
  res.end(text);
}

/** Answers 200 with `bytes`, written in pieces as `options` say; stops if the client leaves. */
export async function sendPieces(
  res: ServerResponse,
  entry: RecordedRequest,
  contentType: string,
  bytes: Uint8Array,
  options: PieceOptions,
): Promise<void> {
  entry.status = 200;
  res.writeHead(200, { "content-type": contentType });
  res.flushHeaders();
  for (let offset = 0; offset < bytes.byteLength; offset += options.pieceBytes) {
    if (res.destroyed) return;
    if (offset > 0) {
      if (options.gate && offset === options.pieceBytes) {
        await Promise.race([options.gate, entry.closed]);
      }
      if (options.pieceDelayMs > 0) await new Promise((r) => setTimeout(r, options.pieceDelayMs));
      if (res.destroyed) return;
    }
    const piece = bytes.subarray(offset, offset + options.pieceBytes);
    res.write(piece);
    entry.bytesSent += piece.byteLength;
  }
  res.end();
}

/** A promise with its resolve function, for gates. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
