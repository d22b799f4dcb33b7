/**
 * Gateway-served audio bytes (seed 000 §6.1): the URLs StoryForge Cloud puts in requests (`url`,
 * `voice` as a clip URL, `clip_url`) are read by the GATEWAY, never passed on to a GPU host.
 *
 * - A URL under a configured bucket base (Cloud's Spaces bucket, S3-compatible) is not fetched
 *   over HTTP at all: its path is the object key, read through the S3 API with the gateway's own
 *   credentials, so private objects work (the 403 that started the seed cannot happen).
 * - A URL under a configured public base is fetched with a plain GET, guarded like webhooks
 *   (`services/jobs/webhook-allowlist.ts`): http(s) only, the host resolved first and every
 *   address checked (private, loopback, link-local/metadata, CGNAT refused), then the connection
 *   made to that checked address; redirects are followed only onto another allowed base (and
 *   checked again); size and time limits apply.
 * - Anything else (other hosts, other buckets, `file:`, `data:`) is refused before any connection.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import {
  bareHost,
  type HostResolver,
  isWebhookUrlError,
  nonPublicRange,
  resolvePublicAddresses,
  type WebhookAddress,
} from "../jobs/webhook-allowlist.js";
import {
  assertBlobKey,
  type BlobStore,
  isBlobKeyError,
  isBlobNotFoundError,
} from "../object-store/blob-store.js";
import { StoryForgeError } from "./storyforge-http.js";

/** Options of {@link createMediaFetcher}. */
export interface MediaFetcherOptions {
  /**
   * Cloud's bucket: `store` reads it with the gateway's credentials; a URL starting with one of
   * `publicBases` (e.g. `https://storyforge-assets.sfo3.digitaloceanspaces.com/`) names the
   * object whose key is the rest of its path. Undefined: no bucket configured.
   */
  bucket?: { store: BlobStore; publicBases: readonly string[] } | undefined;
  /** Other URL bases fetched over HTTP(S) without credentials (VOXGATE_STORYFORGE_FETCH_BASES). */
  httpBases: readonly string[];
  /**
   * Lets HTTP bases resolve to loopback addresses (127.0.0.0/8, ::1), for tests whose fake
   * servers listen on 127.0.0.1. Other non-public ranges stay refused.
   * (VOXGATE_STORYFORGE_FETCH_ALLOW_LOOPBACK)
   */
  allowLoopback: boolean;
  /** Largest object, in bytes (VOXGATE_STORYFORGE_FETCH_MAX_BYTES). */
  maxBytes: number;
  /** Longest fetch, in ms (VOXGATE_STORYFORGE_FETCH_TIMEOUT_MS). */
  timeoutMs: number;
  /** Most redirects followed (each onto an allowed base). @default 3 */
  maxRedirects?: number;
  /** Host resolver (tests). @default dns.lookup, all addresses */
  resolve?: HostResolver;
}

/** Bytes a {@link MediaFetcher} read. */
export interface FetchedMedia {
  /** The object's bytes. */
  bytes: Uint8Array;
  /** Its content type as stored or served ("" when unknown). */
  contentType: string;
  /** Where they came from: the bucket (with credentials) or a public HTTP base. */
  source: "bucket" | "http";
}

/** Reads the audio a URL names, or refuses it before connecting anywhere. */
export interface MediaFetcher {
  /**
   * Reads `url`.
   * @throws StoryForgeError `url_scheme_refused`, `url_not_allowed`, `url_private_address`,
   * `url_redirect_refused`, `object_not_found`, `object_too_large`, `fetch_timeout`,
   * `fetch_failed`; each message names the limit or setting behind it.
   */
  fetch(url: string, signal?: AbortSignal): Promise<FetchedMedia>;
  /** Whether `url` would be read from the bucket (used to tell clip URLs from voice names). */
  isUrl(value: string): boolean;
}

const MAX_URL_CHARS = 2048;

/** Creates the fetcher. Bases are normalized (a trailing `/` added) once, here. */
export function createMediaFetcher(options: MediaFetcherOptions): MediaFetcher {
  const bucketBases = (options.bucket?.publicBases ?? []).map(normalizeBase);
  const httpBases = options.httpBases.map(normalizeBase);
  const maxRedirects = options.maxRedirects ?? 3;

  const parse = (raw: string): URL => {
    if (raw.length > MAX_URL_CHARS) {
      throw new StoryForgeError(
        "url_not_allowed",
        `the URL is longer than ${MAX_URL_CHARS} characters`,
      );
    }
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new StoryForgeError("url_not_allowed", "not an absolute URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new StoryForgeError(
        "url_scheme_refused",
        `${url.protocol.replace(/[^a-z0-9+.-]/gi, "")} URLs are never fetched; only http(s) URLs under a configured base`,
      );
    }
    if (url.username || url.password) {
      throw new StoryForgeError("url_not_allowed", "the URL must not carry credentials");
    }
    return url;
  };

  async function fromBucket(url: URL, base: URL, signal: AbortSignal): Promise<FetchedMedia> {
    const store = options.bucket?.store as BlobStore;
    let key: string;
    try {
      key = decodeURIComponent(url.pathname.slice(base.pathname.length));
      assertBlobKey(key);
    } catch (err) {
      if (isBlobKeyError(err) || err instanceof URIError) {
        throw new StoryForgeError("url_not_allowed", "the URL's path is not a valid object key");
      }
      throw err;
    }
    const info = await store.stat(key);
    if (!info) throw new StoryForgeError("object_not_found", `no object ${key} in the bucket`);
    if (info.sizeBytes > options.maxBytes) {
      throw new StoryForgeError(
        "object_too_large",
        `object ${key} is ${info.sizeBytes} bytes; the limit is ${options.maxBytes} (VOXGATE_STORYFORGE_FETCH_MAX_BYTES)`,
      );
    }
    const parts: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const part of await store.get(key, { signal })) {
        total += part.byteLength;
        if (total > options.maxBytes) {
          throw new StoryForgeError(
            "object_too_large",
            `object ${key} grew past ${options.maxBytes} bytes (VOXGATE_STORYFORGE_FETCH_MAX_BYTES)`,
          );
        }
        parts.push(part);
      }
    } catch (err) {
      if (isBlobNotFoundError(err)) {
        throw new StoryForgeError("object_not_found", `no object ${key} in the bucket`);
      }
      throw err;
    }
    return { bytes: Buffer.concat(parts), contentType: info.contentType, source: "bucket" };
  }

  /** Resolves and checks `url`'s host: the addresses a request to it may connect to. */
  async function checkedAddresses(url: URL): Promise<WebhookAddress[]> {
    const host = bareHost(url);
    let addresses: WebhookAddress[];
    try {
      // Resolution only: the range rule below is this fetcher's own (loopback may be allowed).
      addresses = await resolvePublicAddresses(
        host,
        {
          allowPrivate: true,
          subject: "media host",
          allowPrivateSetting: "VOXGATE_STORYFORGE_FETCH_ALLOW_LOOPBACK",
        },
        options.resolve,
      );
    } catch (err) {
      if (isWebhookUrlError(err)) throw new StoryForgeError("fetch_failed", err.message);
      throw err;
    }
    for (const { address } of addresses) {
      const range = nonPublicRange(address);
      if (!range || (range === "loopback" && options.allowLoopback)) continue;
      throw new StoryForgeError(
        "url_private_address",
        `media host ${host} resolves to ${address} (${range}); only public addresses are fetched` +
          (range === "loopback" ? " (VOXGATE_STORYFORGE_FETCH_ALLOW_LOOPBACK is for tests)" : ""),
      );
    }
    return addresses;
  }

  async function fromHttp(first: URL, signal: AbortSignal): Promise<FetchedMedia> {
    let url = first;
    for (let hop = 0; ; hop++) {
      const addresses = await checkedAddresses(url);
      const res = await get(url, addresses[0] as WebhookAddress, signal);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (hop >= maxRedirects) {
          throw new StoryForgeError("url_redirect_refused", `more than ${maxRedirects} redirects`);
        }
        let next: URL;
        try {
          next = new URL(res.headers.location, url);
        } catch {
          throw new StoryForgeError("url_redirect_refused", "the redirect's Location is not a URL");
        }
        if (!httpBases.some((base) => under(next, base))) {
          throw new StoryForgeError(
            "url_redirect_refused",
            `redirect to ${next.origin} leaves the allowed bases (VOXGATE_STORYFORGE_FETCH_BASES)`,
          );
        }
        url = next;
        continue;
      }
      if (status === 404) {
        res.resume();
        throw new StoryForgeError("object_not_found", `${url.origin} answered 404`);
      }
      if (status < 200 || status >= 300) {
        res.resume();
        throw new StoryForgeError("fetch_failed", `${url.origin} answered ${status}`);
      }
      const declared = Number(res.headers["content-length"] ?? Number.NaN);
      if (declared > options.maxBytes) {
        res.destroy();
        throw new StoryForgeError(
          "object_too_large",
          `${url.origin} offers ${declared} bytes; the limit is ${options.maxBytes} (VOXGATE_STORYFORGE_FETCH_MAX_BYTES)`,
        );
      }
      const parts: Buffer[] = [];
      let total = 0;
      for await (const part of res as AsyncIterable<Buffer>) {
        total += part.byteLength;
        if (total > options.maxBytes) {
          res.destroy();
          throw new StoryForgeError(
            "object_too_large",
            `${url.origin} sent more than ${options.maxBytes} bytes (VOXGATE_STORYFORGE_FETCH_MAX_BYTES)`,
          );
        }
        parts.push(part);
      }
      return {
        bytes: Buffer.concat(parts),
        contentType: String(res.headers["content-type"] ?? ""),
        source: "http",
      };
    }
  }

  return {
    isUrl: (value) => /^[a-z][a-z0-9+.-]*:/i.test(value) && !/^[a-z0-9_-]+:[^/]/i.test(value),
    async fetch(raw, outer) {
      const url = parse(raw);
      const bucketBase = bucketBases.find((base) => under(url, base));
      const httpAllowed = httpBases.some((base) => under(url, base));
      if (!bucketBase && !httpAllowed) {
        throw new StoryForgeError(
          "url_not_allowed",
          `${url.origin}${url.pathname.split("/").slice(0, 2).join("/")}/… is under no configured base (VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES, VOXGATE_STORYFORGE_FETCH_BASES)`,
        );
      }
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const signal = outer ? AbortSignal.any([outer, timeout]) : timeout;
      try {
        return bucketBase ? await fromBucket(url, bucketBase, signal) : await fromHttp(url, signal);
      } catch (err) {
        if (timeout.aborted && !(outer?.aborted ?? false)) {
          throw new StoryForgeError(
            "fetch_timeout",
            `reading the URL took longer than ${options.timeoutMs} ms (VOXGATE_STORYFORGE_FETCH_TIMEOUT_MS)`,
          );
        }
        if (err instanceof StoryForgeError) throw err;
        if (outer?.aborted) throw err;
        throw new StoryForgeError("fetch_failed", (err as Error).message, 200, { cause: err });
      }
    },
  };
}

/** One GET to the checked address, never following redirects itself. */
function get(url: URL, pinned: WebhookAddress, signal: AbortSignal): Promise<IncomingMessage> {
  // Connect to the address that passed the check, never to a second DNS answer.
  const lookup: LookupFunction = (_host, opts, callback) => {
    if ((opts as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: WebhookAddress[]) => void)(null, [pinned]);
    } else {
      callback(null, pinned.address, pinned.family);
    }
  };
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      { method: "GET", lookup, signal, headers: { "user-agent": "voxgate-storyforge/1" } },
      resolve,
    );
    req.on("error", reject);
    req.end();
  });
}

/** A base URL with its path ending in `/`, so `…/bucket` never matches `…/bucket-other/x`. */
function normalizeBase(raw: string): URL {
  const base = new URL(raw);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  base.search = "";
  base.hash = "";
  return base;
}

/** Whether `url` is `base` or below it: same scheme, host and port, path under the base's. */
function under(url: URL, base: URL): boolean {
  return url.origin === base.origin && url.pathname.startsWith(base.pathname);
}
