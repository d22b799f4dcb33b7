import { createHash, createPublicKey, createVerify, type KeyObject, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CRC32C } from "@google-cloud/storage";

/** Options of {@link startGcsEmulator}. */
export interface GcsEmulatorOptions {
  /** Buckets that exist. */
  buckets: string[];
  /** The one service account allowed in: its email and public key (PEM). */
  serviceAccount: { clientEmail: string; publicKeyPem: string };
}

/** A running GCS JSON-API emulator on 127.0.0.1. */
export interface GcsEmulator {
  /** Base URL to give `@google-cloud/storage` as `apiEndpoint`. */
  url: string;
  /** Names of the objects in `bucket`, sorted. */
  objectNames(bucket: string): string[];
  /** Requests refused for missing or bad credentials or signatures, by status. */
  refusals: { 401: number; 403: number };
  /** Stops the server; idempotent. */
  stop(): Promise<void>;
}

interface StoredObject {
  data: Buffer;
  /** Hashes computed once at write time (base64, as GCS reports them). */
  crc32c: string;
  md5Hash: string;
  contentType: string;
  metadata: Record<string, string>;
  timeCreated: string;
  generation: string;
}

interface ResumableSession {
  bucket: string;
  name: string;
  contentType: string;
  metadata: Record<string, string>;
  chunks: Buffer[];
  received: number;
  expectedCrc32c?: string;
  expectedMd5?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts a small Google Cloud Storage JSON-API server that the real `@google-cloud/storage` client
 * works against through `apiEndpoint`: media, multipart and resumable uploads (308 + Range),
 * metadata, `alt=media` downloads with Range, list with prefix/startOffset/pageToken, delete,
 * rewrite (copy). Objects carry correct `crc32c` and `md5Hash`, and hashes the client sends are
 * verified. Every JSON-API call needs a bearer JWT signed by the service account (the client's
 * self-signed JWT); path-style object GETs (`/<bucket>/<object>`) need a valid, unexpired V4
 * signature — anonymous reads get 403, as from a private bucket.
 */
export async function startGcsEmulator(options: GcsEmulatorOptions): Promise<GcsEmulator> {
  const buckets = new Map<string, Map<string, StoredObject>>(
    options.buckets.map((b) => [b, new Map()]),
  );
  const sessions = new Map<string, ResumableSession>();
  const publicKey = createPublicKey(options.serviceAccount.publicKeyPem);
  const refusals = { 401: 0, 403: 0 };
  let generation = 1;

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 401 || status === 403) refusals[status]++;
      if (!res.headersSent) {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: { code: status, message: (err as Error).message, errors: [{ reason: "x" }] },
          }),
        );
      } else {
        res.destroy();
      }
    });
  });

  function bucketOf(name: string): Map<string, StoredObject> {
    const bucket = buckets.get(name);
    if (!bucket) throw new HttpError(404, `bucket ${name} not found`);
    return bucket;
  }

  function objectOf(bucket: string, name: string): StoredObject {
    const object = bucketOf(bucket).get(name);
    if (!object) throw new HttpError(404, `No such object: ${bucket}/${name}`);
    return object;
  }

  function resource(bucket: string, name: string, o: StoredObject) {
    return {
      kind: "storage#object",
      id: `${bucket}/${name}/${o.generation}`,
      name,
      bucket,
      generation: o.generation,
      metageneration: "1",
      contentType: o.contentType,
      size: String(o.data.byteLength),
      md5Hash: o.md5Hash,
      crc32c: o.crc32c,
      timeCreated: o.timeCreated,
      updated: o.timeCreated,
      metadata: o.metadata,
    };
  }

  function store(
    bucket: string,
    name: string,
    data: Buffer,
    meta: { contentType?: string; metadata?: Record<string, string> },
    expected: { crc32c?: string | undefined; md5?: string | undefined },
  ): StoredObject {
    if (!name) throw new HttpError(400, "object name required");
    const crc32c = crc32cOf(data);
    const md5Hash = md5Of(data);
    if (expected.crc32c && expected.crc32c !== crc32c) {
      throw new HttpError(400, "Provided CRC32C does not match the computed one");
    }
    if (expected.md5 && expected.md5 !== md5Hash) {
      throw new HttpError(400, "Provided MD5 hash does not match the computed one");
    }
    const object: StoredObject = {
      data,
      crc32c,
      md5Hash,
      contentType: meta.contentType ?? "application/octet-stream",
      metadata: { ...meta.metadata },
      timeCreated: new Date().toISOString(),
      generation: String(generation++),
    };
    bucketOf(bucket).set(name, object);
    return object;
  }

  function requireBearer(req: IncomingMessage): void {
    const auth = req.headers.authorization ?? "";
    const match = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(auth);
    if (!match) throw new HttpError(401, "Anonymous caller does not have storage access");
    const [, header, payload, signature] = match as unknown as [string, string, string, string];
    const ok = verifyRs256(publicKey, `${header}.${payload}`, Buffer.from(signature, "base64url"));
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      iss?: string;
      exp?: number;
    };
    if (!ok || claims.iss !== options.serviceAccount.clientEmail) {
      throw new HttpError(401, "Invalid Credentials");
    }
    if (!claims.exp || claims.exp * 1000 < Date.now()) throw new HttpError(401, "token expired");
  }

  function sendMedia(req: IncomingMessage, res: ServerResponse, o: StoredObject): void {
    const headers: Record<string, string> = {
      "content-type": o.contentType,
      "x-goog-hash": `crc32c=${o.crc32c},md5=${o.md5Hash}`,
      "x-goog-generation": o.generation,
      "x-goog-stored-content-length": String(o.data.byteLength),
      "x-goog-stored-content-encoding": "identity",
      "accept-ranges": "bytes",
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ""));
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(
        range[2] ? Number(range[2]) : o.data.byteLength - 1,
        o.data.byteLength - 1,
      );
      if (start > end) throw new HttpError(416, "Requested range not satisfiable");
      const part = o.data.subarray(start, end + 1);
      res.writeHead(206, {
        ...headers,
        "content-range": `bytes ${start}-${end}/${o.data.byteLength}`,
        "content-length": String(part.byteLength),
      });
      res.end(req.method === "HEAD" ? undefined : part);
      return;
    }
    res.writeHead(200, { ...headers, "content-length": String(o.data.byteLength) });
    res.end(req.method === "HEAD" ? undefined : o.data);
  }

  function verifySignedUrl(req: IncomingMessage, url: URL): void {
    const q = url.searchParams;
    const signature = q.get("X-Goog-Signature");
    if (!signature) throw new HttpError(403, "AccessDenied: anonymous read of a private object");
    const date = q.get("X-Goog-Date") ?? "";
    const expires = Number(q.get("X-Goog-Expires"));
    const credential = q.get("X-Goog-Credential") ?? "";
    const dm = groups(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, date)?.map(Number);
    if (!dm || !Number.isFinite(expires)) throw new HttpError(403, "malformed signed URL");
    const [year = 0, month = 1, day = 0, hour = 0, minute = 0, second = 0] = dm;
    const start = Date.UTC(year, month - 1, day, hour, minute, second);
    if (Date.now() > start + expires * 1000) throw new HttpError(400, "ExpiredToken");
    if (!credential.startsWith(`${options.serviceAccount.clientEmail}/`)) {
      throw new HttpError(403, "SignatureDoesNotMatch: unknown credential");
    }
    const scope = credential.slice(options.serviceAccount.clientEmail.length + 1);
    const query = [...q.entries()]
      .filter(([k]) => k !== "X-Goog-Signature")
      .map(([k, v]) => [strictEncode(k), strictEncode(v)] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const signedHeaders = (q.get("X-Goog-SignedHeaders") ?? "").split(";");
    const headers = signedHeaders
      .map((h) => {
        const value =
          h === "host"
            ? String(req.headers.host ?? "").replace(/:\d+$/, "")
            : String(req.headers[h] ?? "");
        return `${h}:${value.trim()}\n`;
      })
      .join("");
    const canonical = [
      req.method === "HEAD" ? "GET" : req.method,
      url.pathname,
      query,
      headers,
      signedHeaders.join(";"),
      "UNSIGNED-PAYLOAD",
    ].join("\n");
    const toSign = [
      "GOOG4-RSA-SHA256",
      date,
      scope,
      createHash("sha256").update(canonical).digest("hex"),
    ].join("\n");
    if (!verifyRs256(publicKey, toSign, Buffer.from(signature, "hex"))) {
      throw new HttpError(403, "SignatureDoesNotMatch");
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://emulator");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const q = url.searchParams;

    // Resumable session chunks: the session URL is the credential, as at Google.
    if (method === "PUT" && path.startsWith("/upload/storage/v1/") && q.get("upload_id")) {
      await resumableChunk(req, res, q.get("upload_id") ?? "");
      return;
    }

    const upload = groups(/^\/upload\/storage\/v1\/b\/([^/]+)\/o$/, path);
    if (upload && method === "POST") {
      requireBearer(req);
      const [bucket = ""] = upload;
      bucketOf(bucket);
      const body = await readBody(req);
      const type = q.get("uploadType");
      if (type === "media") {
        const o = store(
          bucket,
          q.get("name") ?? "",
          body,
          { contentType: String(req.headers["content-type"] ?? "") },
          hashHeader(req),
        );
        return json(res, 200, resource(bucket, q.get("name") ?? "", o));
      }
      if (type === "multipart") {
        const { meta, data } = parseMultipart(String(req.headers["content-type"] ?? ""), body);
        const name = meta.name ?? q.get("name") ?? "";
        const o = store(bucket, name, data, meta, { crc32c: meta.crc32c, md5: meta.md5Hash });
        return json(res, 200, resource(bucket, name, o));
      }
      if (type === "resumable") {
        const meta = body.byteLength ? (JSON.parse(body.toString("utf8")) as ObjectMeta) : {};
        const id = randomUUID();
        const session: ResumableSession = {
          bucket,
          name: meta.name ?? q.get("name") ?? "",
          contentType: meta.contentType ?? String(req.headers["x-upload-content-type"] ?? ""),
          metadata: { ...meta.metadata },
          chunks: [],
          received: 0,
        };
        if (meta.crc32c) session.expectedCrc32c = meta.crc32c;
        if (meta.md5Hash) session.expectedMd5 = meta.md5Hash;
        sessions.set(id, session);
        const host = String(req.headers.host ?? "127.0.0.1");
        res.writeHead(200, {
          location: `http://${host}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}`,
          "content-length": "0",
        });
        res.end();
        return;
      }
      throw new HttpError(400, `unsupported uploadType ${type}`);
    }

    const rewrite = groups(
      /^\/storage\/v1\/b\/([^/]+)\/o\/([^/]+)\/(rewriteTo|copyTo)\/b\/([^/]+)\/o\/([^/]+)$/,
      path,
    );
    if (rewrite && method === "POST") {
      requireBearer(req);
      await readBody(req);
      const [sb = "", so = "", verb = "", db = "", dob = ""] = rewrite;
      const source = objectOf(sb, so);
      const o = store(
        db,
        dob,
        Buffer.from(source.data),
        { contentType: source.contentType, metadata: source.metadata },
        {},
      );
      const r = resource(db, dob, o);
      if (verb === "copyTo") return json(res, 200, r);
      return json(res, 200, {
        kind: "storage#rewriteResponse",
        totalBytesRewritten: String(o.data.byteLength),
        objectSize: String(o.data.byteLength),
        done: true,
        resource: r,
      });
    }

    const object = groups(/^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/([^/]+)$/, path);
    if (object) {
      requireBearer(req);
      const [bucket = "", name = ""] = object;
      if (method === "DELETE") {
        objectOf(bucket, name);
        bucketOf(bucket).delete(name);
        res.writeHead(204);
        res.end();
        return;
      }
      if (method === "GET" || method === "HEAD") {
        const o = objectOf(bucket, name);
        if (q.get("alt") === "media") return sendMedia(req, res, o);
        return json(res, 200, resource(bucket, name, o));
      }
    }

    const list = groups(/^\/storage\/v1\/b\/([^/]+)\/o$/, path);
    if (list && method === "GET") {
      requireBearer(req);
      const [bucket = ""] = list;
      const prefix = q.get("prefix") ?? "";
      const startOffset = q.get("startOffset") ?? "";
      const after = q.get("pageToken")
        ? Buffer.from(q.get("pageToken") ?? "", "base64url").toString("utf8")
        : undefined;
      const max = Math.min(Number(q.get("maxResults") || 1000), 1000);
      const names = [...bucketOf(bucket).keys()]
        .filter(
          (n) => n.startsWith(prefix) && n >= startOffset && (after === undefined || n > after),
        )
        .sort();
      const page = names.slice(0, max);
      const items = page.map((n) => resource(bucket, n, objectOf(bucket, n)));
      const next =
        names.length > max ? Buffer.from(page.at(-1) ?? "").toString("base64url") : undefined;
      return json(res, 200, {
        kind: "storage#objects",
        items,
        ...(next ? { nextPageToken: next } : {}),
      });
    }

    // Path-style object URL: what signed URLs (and naive anonymous fetches) use.
    const pathStyle = groups(/^\/([^/]+)\/(.+)$/, path);
    if (pathStyle && (method === "GET" || method === "HEAD")) {
      const [bucket = "", name = ""] = pathStyle;
      if (!buckets.has(bucket)) throw new HttpError(404, "NoSuchBucket");
      verifySignedUrl(req, url);
      return sendMedia(req, res, objectOf(bucket, name));
    }

    throw new HttpError(404, `no route for ${method} ${path}`);
  }

  async function resumableChunk(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
  ): Promise<void> {
    const session = sessions.get(id);
    if (!session) throw new HttpError(404, "upload session not found");
    const body = await readBody(req);
    const range = String(req.headers["content-range"] ?? "");
    let total: number | undefined;
    const chunk = groups(/^bytes (\d+)-(-1|\d+)\/(\d+|\*)$/, range);
    const query = groups(/^bytes \*\/(\d+|\*)$/, range);
    if (chunk) {
      const [first = "", , size = "*"] = chunk;
      const start = Number(first);
      if (start !== session.received) {
        // The client resends from what we confirmed; drop the overlap.
        if (start > session.received) throw new HttpError(400, "gap in resumable upload");
        session.chunks.push(body.subarray(session.received - start));
      } else {
        session.chunks.push(body);
      }
      session.received = start + body.byteLength;
      total = size === "*" ? undefined : Number(size);
    } else if (query) {
      const [size = "*"] = query;
      total = size === "*" ? undefined : Number(size);
    } else if (!range) {
      session.chunks.push(body);
      session.received += body.byteLength;
      total = session.received;
    } else {
      throw new HttpError(400, `bad Content-Range ${range}`);
    }
    if (total !== undefined && session.received >= total) {
      sessions.delete(id);
      const hashes = hashHeader(req);
      const o = store(
        session.bucket,
        session.name,
        Buffer.concat(session.chunks),
        { contentType: session.contentType, metadata: session.metadata },
        {
          crc32c: hashes.crc32c ?? session.expectedCrc32c,
          md5: hashes.md5 ?? session.expectedMd5,
        },
      );
      return json(res, 200, resource(session.bucket, session.name, o));
    }
    const headers: Record<string, string> = { "content-length": "0" };
    if (session.received > 0) headers.range = `bytes=0-${session.received - 1}`;
    res.writeHead(308, headers);
    res.end();
  }

  // Google's front ends keep idle connections for minutes; Node's 5 s default would close
  // sockets the client still holds in its pool and fail its next call with "socket hang up".
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    refusals,
    objectNames: (bucket) => [...bucketOf(bucket).keys()].sort(),
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return stopped;
    },
  };
}

interface ObjectMeta {
  name?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  crc32c?: string;
  md5Hash?: string;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=UTF-8",
    "content-length": String(Buffer.byteLength(text)),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function crc32cOf(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

function md5Of(data: Buffer): string {
  return createHash("md5").update(data).digest("base64");
}

function hashHeader(req: IncomingMessage): { crc32c?: string; md5?: string } {
  const out: { crc32c?: string; md5?: string } = {};
  for (const part of String(req.headers["x-goog-hash"] ?? "").split(",")) {
    const [k, ...rest] = part.trim().split("=");
    const v = rest.join("=");
    if (k === "crc32c" && v) out.crc32c = v;
    if (k === "md5" && v) out.md5 = v;
  }
  return out;
}

function parseMultipart(contentType: string, body: Buffer): { meta: ObjectMeta; data: Buffer } {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) throw new HttpError(400, "multipart upload without boundary");
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    const next = body.indexOf(delimiter, at + delimiter.length);
    if (next < 0) break;
    parts.push(body.subarray(at + delimiter.length, next));
    at = next;
  }
  const bodies = parts.map((p) => {
    const split = p.indexOf("\r\n\r\n");
    // Strip the header block and the CRLF that precedes the next delimiter.
    return p.subarray(split + 4, p.length - 2);
  });
  const [metaPart, mediaPart] = bodies;
  if (!metaPart || !mediaPart)
    throw new HttpError(400, "multipart upload needs metadata and media");
  return {
    meta: JSON.parse(metaPart.toString("utf8")) as ObjectMeta,
    data: Buffer.from(mediaPart),
  };
}

function strictEncode(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function verifyRs256(key: KeyObject, data: string, signature: Buffer): boolean {
  return createVerify("RSA-SHA256").update(data).verify(key, signature);
}

/** The URL-decoded capture groups of `re` in `text`, or undefined when it does not match. */
function groups(re: RegExp, text: string): string[] | undefined {
  const match = re.exec(text);
  return match ? match.slice(1).map((g) => decodeURIComponent(g ?? "")) : undefined;
}
