/**
 * Prometheus metrics of a real gateway after real calls through an agent: `/metrics` (metrics
 * scope), `/v1/metrics` (admin, as before) and the token-free loopback listener serve the same
 * text, which a Prometheus text parser reads, with the call histograms labelled by method and
 * backend, the call counter by protocol and code, backends by state and Node process figures.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

describe("metrics of a gateway that served calls", () => {
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess>;
  let listenUrl = "";
  let hooks: Server;
  let hookCalls = 0;

  beforeAll(async () => {
    // A webhook receiver on loopback, allowed by name and as a private address.
    hooks = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        hookCalls++;
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, "127.0.0.1", resolve));
    gateway = await startGatewayProcess({
      env: {
        VOXGATE_METRICS_LISTEN: "127.0.0.1:0",
        VOXGATE_WEBHOOK_ALLOWED_HOSTS: "127.0.0.1",
        VOXGATE_WEBHOOK_ALLOW_PRIVATE: "true",
      },
      readyTimeoutMs: 60_000,
    });
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
    hooks?.closeAllConnections();
    await new Promise((resolve) => hooks?.close(resolve));
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
    // Both calls got a slot (at once: 0 s waits count too), so both are in the queue-wait histogram.
    expect(families.get("voxgate_queue_wait_seconds")?.type).toBe("HISTOGRAM");
    expect(text).toContain('voxgate_queue_wait_seconds_count{method="StreamSynthesize"} 2');
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

  it("counts jobs by kind and state and webhook deliveries, and names the prompt and queue-age metrics", async () => {
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      const { port } = hooks.address() as AddressInfo;
      const { job } = await client.jobs.createJob({
        spec: {
          kind: {
            case: "render",
            value: { segments: [{ text: "hello", params: { "echo.bytes": "4000" } }] },
          },
        },
        webhookUrl: `http://127.0.0.1:${port}/hook`,
      });
      expect(job?.id).toBeTruthy();
      await waitFor(() => hookCalls > 0, { timeoutMs: 60_000, what: "the job's webhook" });
    } finally {
      client.close();
    }
    // The webhook's outcome is counted after the receiver answered: poll the scrape.
    const text = await waitFor(
      async () => {
        const { text } = await scrape(`${gateway.url}/metrics`, gateway.clientToken);
        return text.includes('voxgate_webhook_deliveries_total{outcome="delivered"} 1') && text;
      },
      { timeoutMs: 30_000, what: "the webhook delivery metric" },
    );
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    expect(families.get("voxgate_jobs")?.metrics).toContainEqual({
      labels: { kind: "render", state: "succeeded" },
      value: "1",
    });
    // No job waits now: the gauge is declared with no series.
    expect(text).toContain("# TYPE voxgate_job_queue_age_seconds gauge");
    expect(families.get("voxgate_job_queue_age_seconds")?.metrics ?? []).toEqual([]);
    // Echo voices need no clone prompt: declared, nothing counted (the prompt delivery test counts them).
    expect(text).toContain("# TYPE voxgate_prompt_deliveries_total counter");
    expect(text).toContain("# TYPE voxgate_prompt_delivered_bytes_total counter");
  });
});
