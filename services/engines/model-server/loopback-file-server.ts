/**
 * Serves bytes the agent holds to a model server on the same host that only takes URLs (the
 * Tinybox node downloads reference clips and audio to analyze): each offer is one URL on
 * 127.0.0.1 with a random one-time token, valid until fetched once or revoked. Object storage is
 * never involved, and nothing else on the network can reach the listener.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One offered file. */
export interface LoopbackOffer {
  /** `http://127.0.0.1:<port>/f/<token>`. */
  readonly url: string;
  /** Whether the file was fetched. */
  readonly fetched: boolean;
  /** Withdraws the URL (a fetch after this is 404); idempotent. */
  revoke(): void;
}

/** Serves one-time URLs on 127.0.0.1. */
export interface LoopbackFileServer {
  /**
   * Offers `bytes` at a fresh one-time URL for at most `ttlMs`. Starts listening on first use.
   */
  offer(bytes: Uint8Array, contentType: string, ttlMs: number): Promise<LoopbackOffer>;
  /** Stops listening and withdraws every offer; idempotent. */
  close(): Promise<void>;
}

/** Creates the server (not listening until the first offer). */
export function createLoopbackFileServer(): LoopbackFileServer {
  const files = new Map<string, { bytes: Uint8Array; contentType: string; done: () => void }>();
  let server: Server | undefined;
  let listening: Promise<number> | undefined;

  const start = (): Promise<number> => {
    listening ??= (async () => {
      server = createServer((req, res) => {
        const token = /^\/f\/([0-9a-f]{48})$/.exec(req.url ?? "")?.[1];
        const file = token && req.method === "GET" ? files.get(token) : undefined;
        if (!file || !token) {
          res.writeHead(404, { "content-type": "text/plain" }).end("not found");
          return;
        }
        // One fetch only: a URL that leaked into a log is useless afterwards.
        files.delete(token);
        file.done();
        res.writeHead(200, {
          "content-type": file.contentType,
          "content-length": String(file.bytes.byteLength),
          "cache-control": "no-store",
        });
        res.end(file.bytes);
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      server.unref();
      return (server.address() as AddressInfo).port;
    })();
    return listening;
  };

  return {
    async offer(bytes, contentType, ttlMs) {
      const port = await start();
      const token = randomBytes(24).toString("hex");
      let fetched = false;
      const timer = setTimeout(() => files.delete(token), ttlMs);
      timer.unref();
      files.set(token, {
        bytes,
        contentType,
        done: () => {
          fetched = true;
          clearTimeout(timer);
        },
      });
      return {
        url: `http://127.0.0.1:${port}/f/${token}`,
        get fetched() {
          return fetched;
        },
        revoke() {
          clearTimeout(timer);
          files.delete(token);
        },
      };
    },
    async close() {
      files.clear();
      if (!server) return;
      const closing = server;
      server = undefined;
      closing.closeAllConnections();
      closing.close();
      await once(closing, "close").catch(() => {});
    },
  };
}
