/**
 * Deadlines longer than `VOXGATE_MAX_TIMEOUT_MS` are cut to it on every protocol, as the README
 * says (issue 20). Before, connect-node refused `connect-timeout-ms: 700000` and
 * `grpc-timeout: 700S` with INVALID_ARGUMENT, so a standard gRPC client with a 15-minute deadline
 * could not call at all. The case is a 15-minute grpc-js deadline and a Connect header
 * of 700000 against the default maximum of 10 minutes; to see the cut without waiting 10 minutes,
 * this gateway's maximum is 1.5 s and its backend holds every call until cancelled: each call must
 * end with DEADLINE_EXCEEDED (not INVALID_ARGUMENT), long before the deadline it asked for.
 */
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../clients/voxgate-client.js";
import { TtsService } from "../gen/voxgate/v1/tts_pb.js";
import { hashToken } from "../services/auth/token-codec.js";
import { capDeadlineHeaders } from "../services/gateway/deadline-cap.js";
import { createGateway, type Gateway } from "../services/gateway/gateway.js";
import { createGrpcServiceDefinition } from "../services/grpc/service-definition.js";
import { createFakeCloneBackend } from "./voices/fake-clone-backend.js";

const TOKEN = "vxg_deadline-cap-test-token-00000000000000000000000000000";
const MAX_TIMEOUT_MS = 1500;
// Far below every deadline asked for (>= 700 s), far above the cap, even on a loaded machine.
const ENDS_WITHIN_MS = 60_000;

let gateway: Gateway;
let publicUrl: string;

beforeAll(async () => {
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [{ name: "tester", sha256: hashToken(TOKEN), scopes: ["tts"] }],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 1024 * 1024,
      maxClipBytes: 16 * 1024 * 1024,
      defaultTimeoutMs: MAX_TIMEOUT_MS,
      maxTimeoutMs: MAX_TIMEOUT_MS,
    },
    storage: { databaseUrl: "memory:" },
    log: pino({ level: "silent" }),
  });
  ({ publicUrl } = await gateway.listen());
  const backend = createFakeCloneBackend({ id: "holder", holdSynthesize: true });
  gateway.registry.add(backend.registration, "test");
  gateway.registry.heartbeat("holder");
}, 60_000);

afterAll(async () => {
  await gateway?.close(500);
});

describe("deadline headers over the maximum are cut to it", () => {
  it("cuts connect-timeout-ms 700000 on Connect", async () => {
    const started = performance.now();
    const response = await fetch(`${publicUrl}/voxgate.v1.TtsService/Synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/json",
        "connect-timeout-ms": "700000",
      },
      body: JSON.stringify({ text: "hello" }),
    });
    const body = (await response.json()) as { code: string };
    expect(body.code).toBe("deadline_exceeded");
    expect(performance.now() - started).toBeLessThan(ENDS_WITHIN_MS);
  });

  it("cuts a 15-minute grpc-js deadline on gRPC", async () => {
    const Client = grpc.makeGenericClientConstructor(createGrpcServiceDefinition(TtsService), "");
    const client = new Client(
      `127.0.0.1:${new URL(publicUrl).port}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${TOKEN}`);
      const started = performance.now();
      const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
        (
          client as unknown as {
            synthesize(
              request: unknown,
              metadata: grpc.Metadata,
              options: grpc.CallOptions,
              callback: (err: grpc.ServiceError | null) => void,
            ): void;
          }
        ).synthesize({ text: "hello" }, metadata, { deadline: Date.now() + 15 * 60_000 }, (err) =>
          err ? resolve(err) : reject(new Error("expected the call to fail")),
        );
      });
      expect(grpc.status[error.code]).toBe("DEADLINE_EXCEEDED");
      expect(performance.now() - started).toBeLessThan(ENDS_WITHIN_MS);
    } finally {
      client.close();
    }
  });

  it("cuts a 700 s deadline on gRPC-Web and REST", async () => {
    const web = createVoxgateClient({
      baseUrl: publicUrl,
      token: TOKEN,
      protocol: "grpc-web",
      timeoutMs: 700_000,
    });
    try {
      const started = performance.now();
      const code = await web.tts.synthesize({ text: "hello" }).then(
        () => "ok",
        (err: { code?: number }) => err.code,
      );
      expect(code).toBe(4); // Code.DeadlineExceeded
      expect(performance.now() - started).toBeLessThan(ENDS_WITHIN_MS);
    } finally {
      web.close();
    }
    const rest = await fetch(`${publicUrl}/v1/speech:synthesize`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/json",
        "x-voxgate-timeout-ms": "700000",
      },
      body: JSON.stringify({ text: "hello" }),
    });
    expect(rest.status).toBe(504);
  });
});

describe("capDeadlineHeaders", () => {
  it("cuts only well-formed headers over the cap, in every gRPC unit", () => {
    const cases: Array<[string, string, string]> = [
      ["grpc-timeout", "700S", "600000m"],
      ["grpc-timeout", "15M", "600000m"],
      ["grpc-timeout", "1H", "600000m"],
      ["grpc-timeout", "99999999u", "99999999u"],
      ["grpc-timeout", "600000m", "600000m"],
      ["grpc-timeout", "5S", "5S"],
      ["grpc-timeout", "700X", "700X"],
      ["connect-timeout-ms", "700000", "600000"],
      ["connect-timeout-ms", "600000", "600000"],
      ["connect-timeout-ms", "-1", "-1"],
    ];
    for (const [name, value, expected] of cases) {
      const header = new Headers({ [name]: value });
      capDeadlineHeaders(header, 600_000);
      expect([name, value, header.get(name)]).toEqual([name, value, expected]);
    }
    const huge = new Headers({ "grpc-timeout": "99H" });
    capDeadlineHeaders(huge, 200_000_000);
    expect(huge.get("grpc-timeout")).toBe("200000S");
  });
});
