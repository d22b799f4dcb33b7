/**
 * Shared parts of the fake model servers: serving on 127.0.0.1 with every request recorded,
 * bounded JSON body reading, and sending a body in pieces with optional pauses and a gate, so
 * tests can watch streaming happen.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

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

/** A fake server listening on 127.0.0.1, as started by {@link serveFake}. */
export interface ListeningFake {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/**
 * Serves `handle` on 127.0.0.1 at a free port. Each request is recorded into `requests` with its
 * JSON body read before `handle` sees it. A failing handler answers 500 with the error, or cuts
 * the connection when the answer has already begun.
 */
export async function serveFake(
  requests: RecordedRequest[],
  handle: (req: IncomingMessage, res: ServerResponse, entry: RecordedRequest) => Promise<void>,
): Promise<ListeningFake> {
  const receive = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const entry = record(req, res);
    requests.push(entry);
    entry.body = await readJson(req);
    await handle(req, res, entry);
  };
  const server = createServer((req, res) => {
    receive(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
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
