/**
 * The browser client factory: it bundles for browsers without a Node module, and (Node has
 * `fetch`, which is all connect-web needs) it speaks Connect and gRPC-Web with the token to a
 * real HTTP server. test/browser/console.chromium.test.ts runs it in Chromium.
 */
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { HttpBodySchema } from "../gen/google/api/httpbody_pb.js";
import { TtsService } from "../gen/voxgate/v1/tts_pb.js";
import { createVoxgateBrowserClient } from "./browser-client.js";
import { type FakeGateway, startFakeGateway } from "./testing/fake-gateway.js";

const TOKEN = "vxg_browser-test-token";

const fakeTts: Partial<ServiceImpl<typeof TtsService>> = {
  async synthesize(req) {
    return { contentType: "text/plain", data: new TextEncoder().encode(`whole:${req.text}`) };
  },
  async *streamSynthesize(req) {
    for (const word of req.text.split(" ")) {
      yield create(HttpBodySchema, {
        contentType: "text/plain",
        data: new TextEncoder().encode(word),
      });
    }
  },
};

let gateway: FakeGateway | undefined;
afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

describe("createVoxgateBrowserClient", () => {
  it("bundles for the browser platform with connect-web and without any Node module", async () => {
    const esbuild = await import("esbuild");
    const result = await esbuild.build({
      entryPoints: [fileURLToPath(new URL("./browser.ts", import.meta.url))],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((path) => path.includes("@connectrpc/connect-web/"))).toBe(true);
    expect(inputs.filter((path) => /connect-node|^node:|services\/tls/.test(path))).toEqual([]);
  });

  for (const protocol of ["connect", "grpc-web"] as const) {
    it(`calls and streams over ${protocol} with fetch, sending the token`, async () => {
      gateway = await startFakeGateway({
        token: TOKEN,
        routes: (r) => r.service(TtsService, fakeTts),
      });
      const client = createVoxgateBrowserClient({ baseUrl: gateway.url, token: TOKEN, protocol });
      const whole = await client.tts.synthesize({ text: "hi" });
      expect(new TextDecoder().decode(whole.data)).toBe("whole:hi");
      const words: string[] = [];
      for await (const chunk of client.tts.streamSynthesize({ text: "one two three" })) {
        words.push(new TextDecoder().decode(chunk.data));
      }
      expect(words).toEqual(["one", "two", "three"]);
      expect(gateway.calls.map((c) => c.authorization)).toEqual([
        `Bearer ${TOKEN}`,
        `Bearer ${TOKEN}`,
      ]);
      expect(gateway.calls[0]?.contentType).toBe(
        protocol === "connect" ? "application/proto" : "application/grpc-web+proto",
      );
    });
  }

  it("fails with UNAUTHENTICATED when the token is wrong", async () => {
    gateway = await startFakeGateway({
      token: TOKEN,
      routes: (r) => r.service(TtsService, fakeTts),
    });
    const client = createVoxgateBrowserClient({ baseUrl: gateway.url, token: "vxg_wrong" });
    const err = await client.tts.synthesize({ text: "hi" }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unauthenticated);
  });

  it("refuses options a browser cannot use, naming them", () => {
    const base = { baseUrl: "http://127.0.0.1:1" };
    expect(() => createVoxgateBrowserClient({ ...base, protocol: "grpc" as never })).toThrow(
      'protocol must be one of connect, grpc-web in a browser, got "grpc"',
    );
    expect(() => createVoxgateBrowserClient({ baseUrl: "ftp://x" })).toThrow(
      "must start with http",
    );
    expect(() => createVoxgateBrowserClient({ ...base, token: "a b" })).toThrow("printable ASCII");
    expect(() => createVoxgateBrowserClient({ ...base, timeoutMs: -1 })).toThrow("timeoutMs");
  });
});
