import { afterEach, describe, expect, it } from "vitest";
import {
  Health,
  type HealthCheckRequest,
  HealthCheckResponse_ServingStatus,
} from "../../../gen/health/v1/health_pb.js";
import { type FakeGateway, startFakeGateway } from "../../testing/fake-gateway.js";
import { createTestIo } from "../../testing/test-io.js";
import { main } from "../main.js";

let gateway: FakeGateway | undefined;
let requests: HealthCheckRequest[];

afterEach(async () => {
  await gateway?.close();
  gateway = undefined;
});

async function start(status: HealthCheckResponse_ServingStatus): Promise<string> {
  requests = [];
  gateway = await startFakeGateway({
    // Health is open: the fake wants a token for everything else.
    token: "vxg_unused",
    httpVersion: "2",
    routes: (router) =>
      router.service(Health, {
        async check(req) {
          requests.push(req);
          return { status };
        },
      }),
  });
  return gateway.url;
}

describe("voxgate health", () => {
  it("prints SERVING and exits 0, without a token", async () => {
    const url = await start(HealthCheckResponse_ServingStatus.SERVING);
    const t = createTestIo();
    expect(await main(["health", "--url", url, "--protocol", "grpc"], t.io)).toBe(0);
    expect(t.stdout()).toBe("SERVING\n");
    expect(requests).toEqual([expect.objectContaining({ service: "" })]);
    expect(gateway?.calls[0]?.authorization).toBeNull();
  });

  it("prints NOT_SERVING for a service and exits 1", async () => {
    const url = await start(HealthCheckResponse_ServingStatus.NOT_SERVING);
    const t = createTestIo({ env: { VOXGATE_URL: url } });
    const argv = ["health", "--service", "voxgate.v1.TtsService", "--protocol", "grpc"];
    expect(await main(argv, t.io)).toBe(1);
    expect(t.stdout()).toBe("NOT_SERVING\n");
    expect(requests[0]?.service).toBe("voxgate.v1.TtsService");
  });

  it("rejects positional arguments with exit 2", async () => {
    const t = createTestIo();
    expect(await main(["health", "now"], t.io)).toBe(2);
    expect(t.stderr()).toMatch(/Unexpected argument 'now'/);
  });
});
