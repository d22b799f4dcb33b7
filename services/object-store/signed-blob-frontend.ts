import { pipeline } from "node:stream/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { NodeRequest, NodeResponse } from "../auth/rpc-error-response.js";
import { writeRpcError } from "../auth/rpc-error-response.js";
import type { HttpFrontend, HttpRoute } from "../gateway/http-frontend.js";
import type { HttpRouteSpec } from "../gateway/http-route-spec.js";
import { assertBlobKey, type BlobStore, isBlobNotFoundError } from "./blob-store.js";
import { type BlobUrlSigner, SIGNED_BLOB_PATH_PREFIX } from "./blob-url-signer.js";

/** Options of {@link createSignedBlobFrontend}. */
export interface SignedBlobFrontendOptions {
  /** Store the signed URLs point into (the filesystem store). */
  store: BlobStore;
  /** Signer that made the URLs; checks each request's signature and expiry. */
  signer: BlobUrlSigner;
  /** Root logger. */
  log: Logger;
}

/**
 * The route of {@link createSignedBlobFrontend} (HEAD too; other methods answer 405). Served
 * only with the filesystem store and a URL secret (VOXGATE_BLOB_URL_SECRET).
 */
export const SIGNED_BLOB_ROUTE = {
  method: "GET",
  path: `${SIGNED_BLOB_PATH_PREFIX}{key=**}`,
  service: undefined,
  doc: {
    operationId: "Gateway_ReadSignedBlob",
    tags: ["Gateway"],
    summary: "Reads a blob through a URL the gateway signed (serverless workers fetch prompts so).",
    description:
      "Only with the filesystem store: S3 and GCS serve their own signed URLs. The signature is " +
      "the credential; a missing, wrong or expired one is 403 before the store is read.",
    parameters: [
      { name: "expires", in: "query", required: true, schema: { type: "string" } },
      { name: "signature", in: "query", required: true, schema: { type: "string" } },
    ],
    responses: {
      "200": {
        description: "The blob's bytes, with its own Content-Type.",
        content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
      },
      default: { $ref: "#/components/responses/RpcError" },
    },
  },
} satisfies HttpRouteSpec;

/**
 * Serves gateway-signed read URLs, `GET /v1/blobs/<key>?expires=…&signature=…`, for the
 * filesystem store (S3 and GCS serve their own signed URLs). The signature is the credential, so
 * the route asks the request gate for no token (`service: undefined`); a missing, wrong or expired
 * signature gets 403 PERMISSION_DENIED before the store is touched. Only GET and HEAD.
 */
export function createSignedBlobFrontend(options: SignedBlobFrontendOptions): HttpFrontend {
  const log = options.log.child({ component: "signed-blobs" });
  const deny = (req: NodeRequest, res: NodeResponse, message: string, code: Code) =>
    writeRpcError(req, res, new ConnectError(message, code));

  async function serve(req: NodeRequest, res: NodeResponse, url: URL): Promise<void> {
    const key = url.pathname.slice(SIGNED_BLOB_PATH_PREFIX.length);
    try {
      assertBlobKey(key);
    } catch {
      return deny(req, res, "invalid blob URL", Code.InvalidArgument);
    }
    const expires = url.searchParams.get("expires") ?? "";
    const signature = url.searchParams.get("signature") ?? "";
    if (!options.signer.verify(key, expires, signature)) {
      return deny(req, res, "blob URL signature is invalid or expired", Code.PermissionDenied);
    }
    const info = await options.store.stat(key);
    if (!info) return deny(req, res, "blob does not exist", Code.NotFound);
    res.writeHead(200, {
      "content-type": info.contentType,
      "content-length": String(info.sizeBytes),
      "cache-control": "private, no-store",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const aborter = new AbortController();
    res.once("close", () => aborter.abort());
    await pipeline(
      await options.store.get(key, { signal: aborter.signal }),
      res as NodeJS.WritableStream,
    );
  }

  return {
    routes: [SIGNED_BLOB_ROUTE],
    route(req) {
      const url = new URL(req.url ?? "/", "http://gateway");
      if (!url.pathname.startsWith(SIGNED_BLOB_PATH_PREFIX)) return undefined;
      const route: HttpRoute = {
        service: undefined,
        writeError: (r, s, error) => writeRpcError(r, s, error),
        serve(r, s) {
          if (r.method !== "GET" && r.method !== "HEAD") {
            const body = JSON.stringify({
              code: "unimplemented",
              message: `${r.method} is not allowed here; use GET`,
            });
            s.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
            s.end(body);
            return;
          }
          serve(r, s, url).catch((err: unknown) => {
            if (!isBlobNotFoundError(err)) log.error({ err }, "signed blob read failed");
            if (!s.headersSent) {
              deny(
                r,
                s,
                isBlobNotFoundError(err) ? "blob does not exist" : "blob read failed",
                isBlobNotFoundError(err) ? Code.NotFound : Code.Internal,
              );
            } else {
              s.destroy();
            }
          });
        },
      };
      return route;
    },
  };
}
