/**
 * CORS on a real gateway process, as a browser on another origin talks to it: preflights from an
 * allowed origin are answered 204 without a token on every kind of route (Connect, gRPC-Web,
 * REST, OpenAI), other origins get no allow headers, and actual answers (successes and errors,
 * HTTP/1.1 and HTTP/2) carry the allow and expose headers a page needs to read them.
 */
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayProcess, startGatewayProcess } from "../helpers/voxgate-stack.js";

const PAGE = "http://app.example.test:5173";
const OTHER = "http://evil.example.test";

/** A route of each kind, with the method the page would use. */
const ROUTES = [
  { kind: "Connect", method: "POST", path: "/voxgate.v1.VoiceService/ListVoices" },
  { kind: "REST", method: "GET", path: "/v1/backends" },
  { kind: "REST delete", method: "DELETE", path: "/v1/jobs/j1" },
  { kind: "OpenAI", method: "POST", path: "/v1/audio/speech" },
  { kind: "OpenAI models", method: "GET", path: "/v1/models" },
];

function preflight(url: string, origin: string, method: string, headers: string) {
  return fetch(url, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": headers,
    },
  });
}

describe("CORS on the public port", () => {
  let gateway: GatewayProcess;

  beforeAll(async () => {
    gateway = await startGatewayProcess({
      env: { VOXGATE_CORS_ALLOWED_ORIGINS: `${PAGE}, http://other-allowed.test` },
    });
  });

  afterAll(async () => {
    expect(await gateway?.proc.stop()).toBe(0);
  });

  for (const route of ROUTES) {
    it(`answers a ${route.kind} preflight from an allowed origin with 204, before auth`, async () => {
      const res = await preflight(
        `${gateway.url}${route.path}`,
        PAGE,
        route.method,
        "authorization, content-type, connect-protocol-version, x-voxgate-timeout-ms, x-voxgate-custom",
      );
      expect(res.status).toBe(204);
      expect(res.headers.get("access-control-allow-origin")).toBe(PAGE);
      expect(res.headers.get("vary")).toBe("Origin");
      const methods = (res.headers.get("access-control-allow-methods") ?? "").split(", ");
      expect(methods).toContain(route.method);
      const allowed = (res.headers.get("access-control-allow-headers") ?? "")
        .toLowerCase()
        .split(", ");
      for (const h of [
        "authorization",
        "content-type",
        "connect-protocol-version",
        "x-grpc-web",
        "x-voxgate-timeout-ms",
        "x-voxgate-custom",
      ]) {
        expect(allowed).toContain(h);
      }
      expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
      expect(await res.text()).toBe("");
    });
  }

  it("gives a preflight from another origin no allow headers", async () => {
    const res = await preflight(
      `${gateway.url}/voxgate.v1.VoiceService/ListVoices`,
      OTHER,
      "POST",
      "authorization, content-type",
    );
    expect(res.status).not.toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    expect(res.headers.get("access-control-allow-methods")).toBeNull();
    expect(res.headers.get("access-control-allow-headers")).toBeNull();
  });

  it("marks a Connect call's answer for the allowed origin and exposes the headers", async () => {
    const res = await fetch(`${gateway.url}/voxgate.v1.VoiceService/ListVoices`, {
      method: "POST",
      headers: {
        origin: PAGE,
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
        "x-request-id": "cors-connect-1",
      },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(PAGE);
    const exposed = (res.headers.get("access-control-expose-headers") ?? "")
      .toLowerCase()
      .split(", ");
    for (const h of [
      "grpc-status",
      "grpc-message",
      "x-request-id",
      "retry-after",
      "x-voxgate-backend",
      "x-voxgate-attempts",
    ]) {
      expect(exposed).toContain(h);
    }
    expect(res.headers.get("x-request-id")).toBe("cors-connect-1");
  });

  it("marks a gRPC-Web call's answer, whose status the page reads from exposed headers", async () => {
    // An empty ListVoicesRequest in one gRPC-Web data frame.
    const res = await fetch(`${gateway.url}/voxgate.v1.VoiceService/ListVoices`, {
      method: "POST",
      headers: {
        origin: PAGE,
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
      },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(PAGE);
    expect(res.headers.get("access-control-expose-headers")?.toLowerCase()).toContain(
      "grpc-status",
    );
    const body = Buffer.from(await res.arrayBuffer());
    // The trailer frame (flag 0x80) carries grpc-status 0.
    expect(body.toString("latin1")).toMatch(/grpc-status: ?0/);
  });

  it("marks refusals too, so a page can read why (401 without a token, REST and OpenAI)", async () => {
    for (const path of ["/v1/backends", "/v1/models"]) {
      const res = await fetch(`${gateway.url}${path}`, { headers: { origin: PAGE } });
      expect(res.status, path).toBe(401);
      expect(res.headers.get("access-control-allow-origin"), path).toBe(PAGE);
      expect(res.headers.get("access-control-expose-headers"), path).toContain("X-Request-Id");
      await res.arrayBuffer();
    }
    const ok = await fetch(`${gateway.url}/v1/models`, {
      headers: {
        origin: "http://other-allowed.test",
        authorization: `Bearer ${gateway.clientToken}`,
      },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://other-allowed.test");
    await ok.arrayBuffer();
  });

  it("adds nothing for another origin's actual call, or a call without Origin", async () => {
    for (const origin of [OTHER, undefined]) {
      const res = await fetch(`${gateway.url}/v1/models`, {
        headers: {
          ...(origin ? { origin } : {}),
          authorization: `Bearer ${gateway.clientToken}`,
        },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(res.headers.get("access-control-expose-headers")).toBeNull();
      await res.arrayBuffer();
    }
  });

  it("does the same over HTTP/2", async () => {
    const session = http2.connect(gateway.url);
    try {
      const request = (headers: http2.OutgoingHttpHeaders, body?: string) =>
        new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const stream = session.request(headers);
          stream.on("response", (h) => {
            stream.resume();
            stream.on("end", () => resolve(h));
          });
          stream.on("error", reject);
          stream.end(body);
        });
      const pre = await request({
        ":method": "OPTIONS",
        ":path": "/voxgate.v1.VoiceService/ListVoices",
        origin: PAGE,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      });
      expect(pre[":status"]).toBe(204);
      expect(pre["access-control-allow-origin"]).toBe(PAGE);
      const call = await request(
        {
          ":method": "POST",
          ":path": "/voxgate.v1.VoiceService/ListVoices",
          origin: PAGE,
          authorization: `Bearer ${gateway.clientToken}`,
          "content-type": "application/json",
        },
        "{}",
      );
      expect(call[":status"]).toBe(200);
      expect(call["access-control-allow-origin"]).toBe(PAGE);
      expect(String(call["access-control-expose-headers"])).toContain("Grpc-Status");
    } finally {
      session.close();
    }
  });
});
