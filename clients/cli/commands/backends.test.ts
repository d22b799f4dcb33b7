import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import {
  BackendAdminService,
  BackendKind,
  BackendSchema,
  BackendState,
  BreakerState,
} from "../../../gen/voxgate/v1/backend_admin_pb.js";
import { type FakeGateway, startFakeGateway } from "../../testing/fake-gateway.js";
import { createTestIo } from "../../testing/test-io.js";
import { main } from "../main.js";

const TOKEN = "vxg_admin-test";

const BACKENDS = [
  create(BackendSchema, {
    id: "agent-gpu1",
    kind: BackendKind.AGENT,
    state: BackendState.READY,
    breaker: BreakerState.CLOSED,
    priority: 10,
    inFlight: 1,
    capabilities: { slots: 4, engines: [{ id: "qwen3-tts" }, { id: "espeak-ng" }] },
    version: "0.1.0",
    address: "10.0.0.7:51234",
    callsTotal: 42n,
    load: {
      gpus: [
        {
          index: 0,
          name: "RTX 4090",
          utilizationPercent: 87.4,
          memoryUsedMib: 8123,
          memoryTotalMib: 24564,
          powerWatts: 310.2,
          temperatureC: 66,
        },
      ],
    },
  }),
  create(BackendSchema, {
    id: "runpod-a",
    kind: BackendKind.SERVERLESS,
    state: BackendState.UNHEALTHY,
    breaker: BreakerState.OPEN,
    priority: 50,
    capabilities: { slots: 2, engines: [{ id: "qwen3-tts" }] },
    version: "",
    address: "https://api.runpod.ai/v2/abc",
    lastError: "health probe: HTTP 503\nupstream busy",
  }),
];

let gateway: FakeGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

async function start(): Promise<Record<string, string>> {
  gateway = await startFakeGateway({
    token: TOKEN,
    routes: (router) =>
      router.service(BackendAdminService, { listBackends: async () => ({ backends: BACKENDS }) }),
  });
  return { VOXGATE_URL: gateway.url, VOXGATE_TOKEN: TOKEN };
}

describe("voxgate backends", () => {
  it("prints the registry as a table", async () => {
    const t = createTestIo({ env: await start() });
    expect(await main(["backends"], t.io)).toBe(0);
    expect(t.stdout()).toBe(
      [
        "ID          KIND        STATE                     IN-FLIGHT/SLOTS  PRIORITY  ENGINES              GPUS                                   VERSION  ADDRESS                       LAST ERROR",
        "agent-gpu1  agent       ready                     1/4              10        qwen3-tts,espeak-ng  0:RTX 4090 87% 8123/24564MiB 310W 66C  0.1.0    10.0.0.7:51234",
        "runpod-a    serverless  unhealthy (breaker open)  0/2              50        qwen3-tts                                                            https://api.runpod.ai/v2/abc  health probe: HTTP 503 upstream busy",
        "",
      ].join("\n"),
    );
    expect(gateway?.calls.map((c) => c.procedure)).toEqual([
      "/voxgate.v1.BackendAdminService/ListBackends",
    ]);
  });

  it("prints JSON with --json", async () => {
    const t = createTestIo({ env: await start() });
    expect(await main(["backends", "--json"], t.io)).toBe(0);
    const json = JSON.parse(t.stdout()) as Record<string, unknown>[];
    expect(json).toHaveLength(2);
    expect(json[0]).toMatchObject({
      id: "agent-gpu1",
      kind: "BACKEND_KIND_AGENT",
      inFlight: 1,
      callsTotal: "42",
    });
    expect(json[1]).toMatchObject({
      state: "BACKEND_STATE_UNHEALTHY",
      breaker: "BREAKER_STATE_OPEN",
    });
  });

  it("needs the token", async () => {
    const env = await start();
    const t = createTestIo({ env: { VOXGATE_URL: env.VOXGATE_URL } });
    expect(await main(["backends"], t.io)).toBe(1);
    expect(t.stderr()).toBe(
      "voxgate backends: the gateway refused the token: set VOXGATE_TOKEN or pass --token\n",
    );
  });
});
