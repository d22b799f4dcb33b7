/**
 * Prometheus metrics of a real gateway after real calls through an agent: `/metrics` (metrics
 * scope), `/v1/metrics` (admin, as before) and the token-free loopback listener serve the same
 * text, which a Prometheus text parser reads, with the call histograms labelled by method and
 * backend, the call counter by protocol and code, backends by state and Node process figures.
 */
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

describe("metrics of a gateway that served calls", () => {
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess>;
  let listenUrl = "";

  beforeAll(async () => {
    gateway = await startGatewayProcess({ env: { VOXGATE_METRICS_LISTEN: "127.0.0.1:0" } });
    const ready = await gateway.proc.waitForLog((l) => l.msg === "metrics listener ready");
    listenUrl = `http://${String(ready.address)}/metrics`;
    agent = startAgentProcess(gateway, "metrics-agent", { VOXGATE_AGENT_ENGINE: "echo" });
    await agent.connected;
    for (const protocol of ["connect", "grpc"] as const) {
      const client = createVoxgateClient({
        baseUrl: gateway.url,
        token: gateway.clientToken,
        protocol,
        ...(protocol === "grpc" ? { httpVersion: "2" as const } : {}),
      });
      try {
        for await (const _ of client.tts.streamSynthesize({
          text: "hello",
          params: { "echo.bytes": "50000" },
        })) {
          // drain
        }
      } finally {
        client.close();
      }
    }
    await gateway.proc.waitForLog(
      (l) => l.msg === "call" && l.method === "voxgate.v1.TtsService/StreamSynthesize",
    );
  }, 120_000);

  afterAll(async () => {
    await agent?.proc.stop();
    await gateway?.proc.stop();
  });

  async function scrape(url: string, token?: string) {
    const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, text: await res.text() };
  }

  it("serves /metrics to a token with the metrics scope, and no metrics without one", async () => {
    expect((await scrape(`${gateway.url}/metrics`)).status).toBe(401);
    const { status, text } = await scrape(`${gateway.url}/metrics`, gateway.clientToken);
    expect(status).toBe(200);
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));

    // The parser reads histograms without their labels (it folds every series into one), so
    // the type comes from it and the labelled series from the text itself.
    expect(families.get("voxgate_call_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(families.get("voxgate_first_audio_seconds")?.type).toBe("HISTOGRAM");
    const series = 'method="StreamSynthesize",backend="metrics-agent"';
    expect(text).toContain(`voxgate_call_duration_seconds_count{${series}} 2`);
    expect(text).toContain(`voxgate_first_audio_seconds_count{${series}} 2`);
    expect(text).toMatch(
      new RegExp(`voxgate_first_audio_seconds_bucket\\{le="\\+Inf",${series}\\} 2`),
    );
    const calls = families.get("voxgate_calls_total")?.metrics ?? [];
    for (const protocol of ["connect", "grpc"]) {
      expect(calls).toContainEqual({
        labels: {
          service: "voxgate.v1.TtsService",
          method: "StreamSynthesize",
          protocol,
          code: "ok",
        },
        value: "1",
      });
    }
    const relayed = families.get("voxgate_relayed_bytes_total")?.metrics[0];
    expect(Number(relayed?.value)).toBeGreaterThanOrEqual(100_000);
    expect(families.get("voxgate_backends")?.metrics).toContainEqual({
      labels: { state: "ready" },
      value: "1",
    });
    expect(families.get("voxgate_agent_sessions")?.metrics[0]?.value).toBe("1");
    expect(families.has("voxgate_process_cpu_seconds_total")).toBe(true);
    expect(families.has("voxgate_nodejs_eventloop_lag_seconds")).toBe(true);
  });

  it("keeps /v1/metrics for admin tokens, and serves the loopback listener without a token", async () => {
    const old = await scrape(`${gateway.url}/v1/metrics`, gateway.clientToken);
    expect(old.status).toBe(200);
    expect(old.text).toContain("voxgate_call_duration_seconds_bucket");
    const open = await scrape(listenUrl);
    expect(open.status).toBe(200);
    expect(parsePrometheusTextFormat(open.text).some((f) => f.name === "voxgate_calls_total")).toBe(
      true,
    );
  });
});
