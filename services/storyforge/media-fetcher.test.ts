/**
 * SSRF guards of the media fetcher, against real servers on 127.0.0.1 and s3rver as Cloud's
 * private bucket. Every refusal names its rule, and the target of a refused URL never sees a
 * connection (servers count them; the bucket is wrapped to record stat/get calls).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type S3rverServer, startS3rverServer } from "../../test/helpers/s3rver-server.js";
import type { BlobStore } from "../object-store/blob-store.js";
import { createS3BlobStore } from "../object-store/s3-blob-store.js";
import { createMediaFetcher, type MediaFetcherOptions } from "./media-fetcher.js";
import { StoryForgeError } from "./storyforge-http.js";

const BUCKET = "storyforge-assets";

interface CountingServer {
  url: string;
  connections(): number;
  close(): Promise<void>;
}

async function serve(handler: Parameters<typeof createServer>[1]): Promise<CountingServer> {
  const server: Server = createServer(handler);
  let connections = 0;
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let s3: S3rverServer;
let store: BlobStore;
const calls: string[] = [];
/** The real S3 store, recording which operations the fetcher asked of it. */
let recorded: BlobStore;
let audio: CountingServer;
let elsewhere: CountingServer;
let redirector: CountingServer;
let silent: CountingServer;

beforeAll(async () => {
  s3 = await startS3rverServer(BUCKET);
  store = createS3BlobStore({
    bucket: BUCKET,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3.credentials,
  });
  recorded = {
    ...store,
    stat: (key) => {
      calls.push(`stat ${key}`);
      return store.stat(key);
    },
    get: (key, options) => {
      calls.push(`get ${key}`);
      return store.get(key, options);
    },
  };
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: s3.credentials,
  });
  await client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: "voices/clips/small.wav",
      Body: Buffer.alloc(2000, 1),
    }),
  );
  await client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: "voices/clips/big.wav",
      Body: Buffer.alloc(9000, 1),
    }),
  );
  client.destroy();
  audio = await serve((req, res) => {
    if (req.url === "/clips/big.wav") {
      res.writeHead(200, { "content-type": "audio/wav", "content-length": "9000" });
      res.end(Buffer.alloc(9000));
    } else if (req.url === "/clips/endless.wav") {
      // No Content-Length: the size shows only while reading.
      res.writeHead(200, { "content-type": "audio/wav" });
      res.end(Buffer.alloc(9000));
    } else {
      res.writeHead(200, { "content-type": "audio/wav" });
      res.end(Buffer.alloc(1000, 2));
    }
  });
  elsewhere = await serve((_req, res) => res.end("secret"));
  redirector = await serve((req, res) => {
    const target =
      req.url === "/inside" ? `${audio.url}/clips/ok.wav` : `${elsewhere.url}/latest/meta-data/`;
    res.writeHead(302, { location: target });
    res.end();
  });
  silent = await serve(() => {
    // Never answers: the fetch must time out.
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([audio, elsewhere, redirector, silent].map((s) => s?.close()));
  await store?.close();
  await s3?.stop();
});

function fetcher(overrides: Partial<MediaFetcherOptions> = {}) {
  return createMediaFetcher({
    bucket: { store: recorded, publicBases: [`${s3.endpoint}/${BUCKET}/`] },
    httpBases: [`${audio.url}/clips/`, `${redirector.url}/`, `${silent.url}/`],
    allowLoopback: true,
    maxBytes: 4096,
    timeoutMs: 1500,
    ...overrides,
  });
}

async function refusal(promise: Promise<unknown>): Promise<StoryForgeError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(StoryForgeError);
  return error as StoryForgeError;
}

describe("media fetcher", () => {
  it("reads an object of the private bucket with the gateway's credentials", async () => {
    calls.length = 0;
    const media = await fetcher().fetch(`${s3.endpoint}/${BUCKET}/voices/clips/small.wav`);
    expect(media.source).toBe("bucket");
    expect(media.bytes.byteLength).toBe(2000);
    // A plain GET of the same URL (what a GPU host did) is refused by the private bucket.
    expect((await fetch(`${s3.endpoint}/${BUCKET}/voices/clips/small.wav`)).status).toBe(403);
  });

  it("refuses another bucket on the same endpoint without touching the store", async () => {
    calls.length = 0;
    const error = await refusal(
      fetcher().fetch(`${s3.endpoint}/other-bucket/voices/clips/small.wav`),
    );
    expect(error.code).toBe("url_not_allowed");
    expect(error.message).toContain("VOXGATE_STORYFORGE_MEDIA_PUBLIC_BASES");
    expect(calls).toEqual([]);
  });

  it("refuses a bucket object over the size limit after its stat, never reading it", async () => {
    calls.length = 0;
    const error = await refusal(fetcher().fetch(`${s3.endpoint}/${BUCKET}/voices/clips/big.wav`));
    expect(error.code).toBe("object_too_large");
    expect(error.message).toContain(
      "9000 bytes; the limit is 4096 (VOXGATE_STORYFORGE_FETCH_MAX_BYTES)",
    );
    expect(calls).toEqual(["stat voices/clips/big.wav"]);
  });

  it("refuses file: and data: URLs by scheme", async () => {
    for (const url of ["file:///etc/passwd", "data:audio/wav;base64,UklGRg=="]) {
      const error = await refusal(fetcher().fetch(url));
      expect(error.code).toBe("url_scheme_refused");
    }
  });

  it("refuses loopback by default, before any connection", async () => {
    const before = audio.connections();
    const error = await refusal(
      fetcher({ allowLoopback: false }).fetch(`${audio.url}/clips/ok.wav`),
    );
    expect(error.code).toBe("url_private_address");
    expect(error.message).toContain("(loopback)");
    expect(audio.connections()).toBe(before);
  });

  it("refuses hosts resolving to private, link-local (metadata) or CGNAT addresses, even on the allowlist", async () => {
    const resolved: Record<string, string> = {
      "media.internal.test": "10.1.2.3",
      "metadata.test": "169.254.169.254",
      "cgnat.test": "100.64.0.9",
      "mixed.test": "93.184.216.34",
    };
    const media = fetcher({
      httpBases: Object.keys(resolved).map((host) => `http://${host}/`),
      resolve: async (host) =>
        host === "mixed.test"
          ? [
              { address: "93.184.216.34", family: 4 },
              { address: "192.168.0.7", family: 4 },
            ]
          : [{ address: resolved[host] ?? "0.0.0.0", family: 4 }],
    });
    for (const [host, range] of [
      ["media.internal.test", "private"],
      ["metadata.test", "linkLocal"],
      ["cgnat.test", "carrierGradeNat"],
      ["mixed.test", "private"],
    ] as const) {
      const error = await refusal(media.fetch(`http://${host}/x.wav`));
      expect(error.code, host).toBe("url_private_address");
      expect(error.message).toContain(`(${range})`);
    }
    const literal = await refusal(fetcher().fetch("http://169.254.169.254/latest/meta-data/"));
    expect(literal.code).toBe("url_not_allowed");
  });

  it("follows a redirect that stays under a base, refuses one to another host before connecting", async () => {
    const inside = await fetcher().fetch(`${redirector.url}/inside`);
    expect(inside.bytes.byteLength).toBe(1000);
    const before = elsewhere.connections();
    const error = await refusal(fetcher().fetch(`${redirector.url}/outside`));
    expect(error.code).toBe("url_redirect_refused");
    expect(error.message).toContain("VOXGATE_STORYFORGE_FETCH_BASES");
    expect(elsewhere.connections()).toBe(before);
  });

  it("refuses oversized HTTP objects by Content-Length and while reading", async () => {
    const declared = await refusal(fetcher().fetch(`${audio.url}/clips/big.wav`));
    expect(declared.code).toBe("object_too_large");
    expect(declared.message).toContain("offers 9000 bytes; the limit is 4096");
    const streamed = await refusal(fetcher().fetch(`${audio.url}/clips/endless.wav`));
    expect(streamed.code).toBe("object_too_large");
  });

  it("names the time limit when a server never answers", async () => {
    const error = await refusal(fetcher({ timeoutMs: 300 }).fetch(`${silent.url}/x.wav`));
    expect(error.code).toBe("fetch_timeout");
    expect(error.message).toContain("300 ms (VOXGATE_STORYFORGE_FETCH_TIMEOUT_MS)");
  });

  it("refuses URLs under no base, and credentials in URLs", async () => {
    const before = elsewhere.connections();
    expect((await refusal(fetcher().fetch(`${elsewhere.url}/x.wav`))).code).toBe("url_not_allowed");
    expect((await refusal(fetcher().fetch(`http://user:pw@127.0.0.1:1/clips/x.wav`))).code).toBe(
      "url_not_allowed",
    );
    expect(elsewhere.connections()).toBe(before);
  });
});
