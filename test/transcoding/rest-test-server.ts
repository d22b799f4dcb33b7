/**
 * Test helper: the REST transcoder over a real HTTP server on 127.0.0.1:0, calling the test-only
 * BookshelfService through the in-process transport (no gateway, no voxgate services), plus a
 * small HTTP/1.1 client that shows status, headers, raw bytes and whether the response was cut.
 */
import * as http from "node:http";
import { createServiceImplSpec } from "@connectrpc/connect";
import { pino } from "pino";
import { settingDefaults } from "../../services/config/settings.js";
import { gatewaySettings } from "../../services/gateway/gateway-settings.js";
import { createInProcessTransport } from "../../services/gateway/in-process-transport.js";
import { createPublicServer } from "../../services/gateway/public-server.js";
import {
  createRestTranscoder,
  type RestTranscoder,
  type UnknownQueryPolicy,
} from "../../services/transcoding/index.js";
import { BookshelfService } from "../gen/voxgate/testing/v1/bookshelf_pb.js";
import { type BookshelfCall, createBookshelfService } from "./bookshelf-service.js";

/** A running transcoder test server. */
export interface RestTestServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Port. */
  port: number;
  /** The transcoder. */
  transcoder: RestTranscoder;
  /** Calls the service received. */
  calls: BookshelfCall[];
  /** Requests the transcoder passed on (no route), as `METHOD path`. */
  passed: string[];
  /** Stops the server. */
  close(): Promise<void>;
}

/** Options of {@link startRestTestServer}. */
export interface RestTestServerOptions {
  /** @default "reject" */
  unknownQuery?: UnknownQueryPolicy;
  /** @default 64 KiB */
  maxRequestBytes?: number;
  /** @default 60_000 */
  maxTimeoutMs?: number;
}

/** Starts the transcoder for BookshelfService on a free port. */
export async function startRestTestServer(
  options: RestTestServerOptions = {},
): Promise<RestTestServer> {
  const log = pino({ level: "silent" });
  const { impl, calls } = createBookshelfService();
  const transport = createInProcessTransport({
    services: [createServiceImplSpec<typeof BookshelfService>(BookshelfService, impl)],
    interceptors: [],
  });
  const transcoder = createRestTranscoder({
    services: [BookshelfService],
    transport,
    log,
    maxRequestBytes: options.maxRequestBytes ?? 64 * 1024,
    maxTimeoutMs: options.maxTimeoutMs ?? 60_000,
    unknownQuery: options.unknownQuery ?? "reject",
    maxJsonDepth: settingDefaults(gatewaySettings).maxJsonDepth,
    unmatched: "not-found",
  });
  const passed: string[] = [];
  let requests = 0;
  const server = createPublicServer({
    host: "127.0.0.1",
    port: 0,
    log,
    handler(req, res) {
      const route = transcoder.route(req);
      if (!route) {
        passed.push(`${req.method} ${req.url}`);
        res.writeHead(418).end();
        return;
      }
      requests++;
      route.serve(req, res, { requestId: `req-${requests}`, principal: undefined });
    },
  });
  const port = await server.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    transcoder,
    calls,
    passed,
    close: () => server.close(500),
  };
}

/** What {@link send} saw. */
export interface SentResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Body chunks as they arrived. */
  chunks: Buffer[];
  /** True when the server cut the response before its end. */
  cut: boolean;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** Sends one HTTP/1.1 request and reads the whole answer. */
export function send(
  url: string,
  method: string,
  path: string,
  options: { body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<SentResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${path}`,
      {
        method,
        headers: {
          connection: "close",
          ...(options.body !== undefined
            ? { "content-length": String(Buffer.byteLength(options.body)) }
            : {}),
          ...options.headers,
        },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let cut = false;
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("aborted", () => {
          cut = true;
        });
        res.on("error", () => {
          cut = true;
        });
        res.on("close", () => {
          const body = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = JSON.parse(body.toString("utf8"));
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            chunks,
            cut: cut || !res.complete,
            json,
          });
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}
