import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, request, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The part of s3rver's class used here (the package ships no types). */
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)("s3rver") as S3rverClass;

/** A throwaway S3-compatible server on 127.0.0.1 with one private bucket. */
export interface S3rverServer {
  /** Endpoint to give the S3 client (path-style), the private-bucket proxy in front of s3rver. */
  endpoint: string;
  /** The bucket that exists. */
  bucket: string;
  /** s3rver's fixed credentials. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** GET/HEAD requests the proxy refused with 403 (anonymous, or a forged presigned URL). */
  refusals(): number;
  /** Stops the proxy and s3rver and deletes the files; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver in a temporary directory behind a small proxy. s3rver checks presigned expiry but
 * never signatures, so the proxy plays a private bucket: a GET or HEAD with neither an
 * `Authorization` header nor an `X-Amz-Signature` query parameter gets 403 AccessDenied — the
 * condition of the old "agent fetched a private URL" 403 bug — and the proxy checks presigned
 * URLs' SigV4 signatures itself (403 SignatureDoesNotMatch), which s3rver does not.
 */
export async function startS3rverServer(bucket = "voxgate-test"): Promise<S3rverServer> {
  const dir = mkdtempSync(join(tmpdir(), "voxgate-s3rver-"));
  const s3rver = new S3rver({
    port: 0,
    address: "127.0.0.1",
    directory: dir,
    silent: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const upstream = await s3rver.run();
  let refused = 0;

  const proxy: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const anonymous = !req.headers.authorization && !url.searchParams.has("X-Amz-Signature");
    const read = req.method === "GET" || req.method === "HEAD";
    const denied = anonymous
      ? "AccessDenied"
      : url.searchParams.has("X-Amz-Signature") && !presignedSignatureValid(req, url)
        ? "SignatureDoesNotMatch"
        : undefined;
    if (read && denied) {
      refused++;
      res.writeHead(403, { "content-type": "application/xml" });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${denied}</Code><Message>Access Denied</Message></Error>`,
      );
      req.resume();
      return;
    }
    const forward = request(
      {
        host: "127.0.0.1",
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const port = (proxy.address() as AddressInfo).port;

  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    refusals: () => refused,
    stop() {
      stopped ??= (async () => {
        proxy.closeAllConnections();
        await new Promise<void>((resolve) => proxy.close(() => resolve()));
        await s3rver.close();
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

const SECRET = "S3RVER";

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Checks a SigV4 presigned URL's signature with s3rver's fixed secret (expiry is s3rver's job). */
function presignedSignatureValid(req: IncomingMessage, url: URL): boolean {
  const q = url.searchParams;
  const credential = (q.get("X-Amz-Credential") ?? "").split("/");
  const [, date, region, service] = credential;
  const amzDate = q.get("X-Amz-Date") ?? "";
  if (credential.length !== 5 || !date || !region || !service) return false;
  const signedHeaders = (q.get("X-Amz-SignedHeaders") ?? "").split(";");
  const query = [...q.entries()]
    .filter(([k]) => k !== "X-Amz-Signature")
    .map(([k, v]) => [rfc3986(k), rfc3986(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const headers = signedHeaders
    .map(
      (h) =>
        `${h}:${String(req.headers[h] ?? "")
          .trim()
          .replace(/\s+/g, " ")}\n`,
    )
    .join("");
  const canonical = [
    req.method,
    url.pathname,
    query,
    headers,
    signedHeaders.join(";"),
    q.get("X-Amz-Content-Sha256") ?? "UNSIGNED-PAYLOAD",
  ].join("\n");
  const scope = credential.slice(1).join("/");
  const toSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${SECRET}`, date), region), service), "aws4_request");
  const expected = hmac(key, toSign).toString("hex");
  const given = q.get("X-Amz-Signature") ?? "";
  return (
    given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected))
  );
}
