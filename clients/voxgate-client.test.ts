import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { HttpBodySchema } from "../gen/google/api/httpbody_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/health/v1/health_pb.js";
import { PromptStoreService } from "../gen/voxgate/v1/prompt_store_pb.js";
import { TtsService } from "../gen/voxgate/v1/tts_pb.js";
import { type FakeGateway, startFakeGateway } from "./testing/fake-gateway.js";
import {
  createVoxgateClient,
  createVoxgateTransport,
  type VoxgateClient,
  type VoxgateHttpVersion,
  type VoxgateProtocol,
} from "./voxgate-client.js";

const TOKEN = "vxg_test-token";

const fakeTts: Partial<ServiceImpl<typeof TtsService>> = {
  async synthesize(req) {
    return { contentType: "text/plain", data: new TextEncoder().encode(`whole:${req.text}`) };
  },
  async *streamSynthesize(req, ctx) {
    ctx.responseHeader.set("x-voxgate-backend", "fake-1");
    for (const word of req.text.split(" ")) {
      yield create(HttpBodySchema, {
        contentType: "text/plain",
        data: new TextEncoder().encode(word),
      });
    }
  },
};

const fakeHealth: Partial<ServiceImpl<typeof Health>> = {
  async check() {
    return { status: HealthCheckResponse_ServingStatus.SERVING };
  },
};

let gateway: FakeGateway | undefined;
let client: VoxgateClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  await gateway?.close();
  gateway = undefined;
});

async function start(httpVersion: VoxgateHttpVersion, token?: string): Promise<FakeGateway> {
  gateway = await startFakeGateway({
    httpVersion,
    token,
    routes(router) {
      router.service(TtsService, fakeTts);
      router.service(Health, fakeHealth);
      router.service(PromptStoreService, {
        async putPrompt(requests) {
          let bytes = 0;
          for await (const piece of requests) {
            if (piece.kind.case === "data") bytes += piece.kind.value.length;
          }
          return { prompt: { digest: "d".repeat(64), sizeBytes: BigInt(bytes) } };
        },
      });
    },
  });
  return gateway;
}

const matrix: [VoxgateProtocol, VoxgateHttpVersion, string][] = [
  ["connect", "1.1", "application/(connect\\+)?proto"],
  ["connect", "2", "application/(connect\\+)?proto"],
  ["grpc", "2", "application/grpc"],
  ["grpc-web", "1.1", "application/grpc-web"],
  ["grpc-web", "2", "application/grpc-web"],
];

describe("createVoxgateClient", () => {
  it.each(matrix)(
    "calls unary and server-streaming RPCs over %s on HTTP/%s with the token",
    async (protocol, httpVersion, contentType) => {
      const fake = await start(httpVersion, TOKEN);
      client = createVoxgateClient({ baseUrl: fake.url, token: TOKEN, protocol, httpVersion });

      const whole = await client.tts.synthesize({ text: "hi there" });
      expect(new TextDecoder().decode(whole.data)).toBe("whole:hi there");

      let backend: string | null = null;
      const words: string[] = [];
      const stream = client.tts.streamSynthesize(
        { text: "one two three" },
        { onHeader: (headers) => (backend = headers.get("x-voxgate-backend")) },
      );
      for await (const body of stream) words.push(new TextDecoder().decode(body.data));
      expect(words).toEqual(["one", "two", "three"]);
      expect(backend).toBe("fake-1");

      expect(fake.calls.map((c) => c.procedure)).toEqual([
        "/voxgate.v1.TtsService/Synthesize",
        "/voxgate.v1.TtsService/StreamSynthesize",
      ]);
      for (const call of fake.calls) {
        expect(call.authorization).toBe(`Bearer ${TOKEN}`);
        expect(call.contentType).toMatch(new RegExp(`^${contentType}`));
      }
    },
  );

  it("defaults to Connect over HTTP/1.1 in binary, without a token", async () => {
    const fake = await start("1.1");
    client = createVoxgateClient({ baseUrl: fake.url });
    await client.tts.synthesize({ text: "x" });
    expect(fake.calls[0]?.contentType).toBe("application/proto");
    expect(fake.calls[0]?.authorization).toBeNull();
  });

  it("defaults gRPC to HTTP/2, and close() after a failed session raises no uncaught error", async () => {
    // An HTTP/1.1-only server answers the HTTP/2 preface with a 400, failing the session.
    const fake = await start("1.1");
    client = createVoxgateClient({ baseUrl: fake.url, protocol: "grpc", timeoutMs: 2_000 });
    await expect(client.tts.synthesize({ text: "x" })).rejects.toBeInstanceOf(ConnectError);
    // Node emits a late session error here; vitest fails the run if nothing handles it.
    client.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
  });

  it("sends JSON when useBinaryFormat is false", async () => {
    const fake = await start("2");
    client = createVoxgateClient({ baseUrl: fake.url, useBinaryFormat: false, httpVersion: "2" });
    await client.health.check({});
    expect(fake.calls[0]?.contentType).toBe("application/json");
  });

  it("runs client streams over HTTP/2", async () => {
    const fake = await start("2", TOKEN);
    client = createVoxgateClient({ baseUrl: fake.url, token: TOKEN, httpVersion: "2" });
    async function* pieces() {
      yield { kind: { case: "metadata" as const, value: { name: "p" } } };
      yield { kind: { case: "data" as const, value: new Uint8Array(1000) } };
      yield { kind: { case: "data" as const, value: new Uint8Array(24) } };
    }
    const { prompt } = await client.prompts.putPrompt(pieces());
    expect(prompt?.sizeBytes).toBe(1024n);
  });

  it("fails with UNAUTHENTICATED when the token is wrong", async () => {
    const fake = await start("2", TOKEN);
    client = createVoxgateClient({ baseUrl: fake.url, token: "vxg_wrong", httpVersion: "2" });
    await expect(client.tts.synthesize({ text: "x" })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });
    // Health needs no token.
    await expect(client.health.check({})).resolves.toMatchObject({
      status: HealthCheckResponse_ServingStatus.SERVING,
    });
  });

  it("applies timeoutMs to every call unless the call overrides it", async () => {
    gateway = await startFakeGateway({
      routes(router) {
        router.service(TtsService, {
          async synthesize(_req, ctx) {
            await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
            throw new ConnectError("unreachable", Code.Internal);
          },
        });
      },
    });
    client = createVoxgateClient({ baseUrl: gateway.url, timeoutMs: 150 });
    const started = performance.now();
    await expect(client.tts.synthesize({ text: "x" })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
    expect(performance.now() - started).toBeLessThan(5_000);
    client.close();

    client = createVoxgateClient({ baseUrl: gateway.url, timeoutMs: 60_000 });
    await expect(client.tts.synthesize({ text: "x" }, { timeoutMs: 100 })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
  });

  it.each(["1.1", "2"] as const)(
    "close() releases the HTTP/%s connection so nothing hangs",
    async (httpVersion) => {
      const fake = await start(httpVersion);
      client = createVoxgateClient({ baseUrl: fake.url, httpVersion });
      await client.health.check({});
      expect(fake.openConnections()).toBe(1);
      client.close();
      client.close(); // idempotent
      await fake.waitForNoConnections();
      expect(fake.openConnections()).toBe(0);
    },
  );
});

describe("createVoxgateTransport", () => {
  it("is a transport with close()", async () => {
    const fake = await start("2");
    const transport = createVoxgateTransport({ baseUrl: fake.url, httpVersion: "2" });
    expect(typeof transport.unary).toBe("function");
    expect(typeof transport.stream).toBe("function");
    transport.close();
  });

  it.each([
    [{ baseUrl: "not a url" }, /not a URL/],
    [{ baseUrl: "ftp://example.com" }, /http:\/\/ or https:\/\//],
    [{ baseUrl: "http://x", protocol: "soap" as VoxgateProtocol }, /protocol must be one of/],
    [{ baseUrl: "http://x", httpVersion: "3" as VoxgateHttpVersion }, /httpVersion must be/],
    [
      { baseUrl: "http://x", protocol: "grpc" as const, httpVersion: "1.1" as const },
      /gRPC needs HTTP\/2/,
    ],
    [{ baseUrl: "http://x", timeoutMs: -1 }, /timeoutMs must be/],
    [{ baseUrl: "http://x", timeoutMs: Number.NaN }, /timeoutMs must be/],
    [{ baseUrl: "http://x", token: "" }, /token must be/],
    [{ baseUrl: "http://x", token: "a\nb" }, /token must be/],
  ])("rejects invalid options %o", (options, message) => {
    expect(() => createVoxgateTransport(options)).toThrow(message);
  });
});
