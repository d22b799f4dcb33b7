/**
 * The resume bug, with real processes: an agent frozen (SIGSTOP) long enough for the gateway to
 * drop it, with calls in flight and a call sent meanwhile, must come back READY after SIGCONT
 * every time, without its memory running away.
 *
 * The issue asks for 20 cycles of 0.5–6 s. CI runs RESUME_CYCLES (default 5) cycles of 0.5–3.5 s
 * so the file stays well under a minute on a loaded 2-core machine; every cycle past 2.5 s is one
 * the gateway drops. `VOXGATE_RESUME_CYCLES=20 VOXGATE_RESUME_MAX_FREEZE_MS=6000 npx vitest run
 * test/e2e/agent-resume.e2e.test.ts` runs the full version.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { BackendState } from "../../gen/voxgate/v1/backend_admin_pb.js";
import { ECHO_PARAMS } from "../../services/engines/echo/index.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const CYCLES = Number(process.env.VOXGATE_RESUME_CYCLES ?? 5);
const MIN_FREEZE_MS = 500;
const MAX_FREEZE_MS = Number(process.env.VOXGATE_RESUME_MAX_FREEZE_MS ?? 3500);
/** The agent's reconnect backoff cap in this test (VOXGATE_AGENT_RECONNECT_MAX_MS). */
const BACKOFF_CAP_MS = 2000;
/**
 * Bound on the agent's RSS growth over the run. The issue's 20 MB is for its 20 cycles (measured
 * 2026-12-07: -7.2 MB). A short run ends before V8's first major collection: RSS climbs ~4 MB a
 * cycle (154 MB at cycle 5) and falls back (127 MB at cycle 7), so 5 cycles measured 16-25 MB
 * and get 60 MB. The bug this guards against grew 200-300 MB per second.
 */
const MAX_RSS_GROWTH_MB = CYCLES >= 20 ? 20 : 60;
/** Echo answer size; the stream carries it behind a 44-byte WAV header. */
const ANSWER_BYTES = 256 * 1024;
const STREAM_BYTES = ANSWER_BYTES + 44;

/** Resident memory of a process, in MB (Linux /proc). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/** A small seeded PRNG (mulberry32), so a failing run can be repeated with its printed seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("agent resume after a freeze", () => {
  let gateway: GatewayProcess;
  let client: VoxgateClient;

  beforeAll(async () => {
    gateway = await startGatewayProcess();
    client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
  });

  afterAll(async () => {
    client?.close();
    expect(await gateway?.proc.stop()).toBe(0);
  });

  it(
    `comes back READY after ${CYCLES} freeze/thaw cycles with calls in flight; memory stays bounded`,
    async () => {
      const seed = Number(process.env.VOXGATE_RESUME_SEED ?? Date.now() % 100_000);
      const random = seeded(seed);
      const agent = startAgentProcess(gateway, "sleeper", {
        VOXGATE_AGENT_ENGINE: "echo",
        VOXGATE_AGENT_SLOTS: "4",
        VOXGATE_AGENT_RECONNECT_MAX_MS: String(BACKOFF_CAP_MS),
      });
      const pid = agent.proc.child.pid ?? 0;
      const backend = async () =>
        (await client.backends.listBackends({})).backends.find((b) => b.id === "sleeper");
      const ready = async () => (await backend())?.state === BackendState.READY;
      /**
       * READY and heard from (a heartbeat) after `sinceMs` (wall clock): a READY seen just after
       * SIGCONT may still be the frozen session, which the gateway can close a moment later if the
       * thaw came right at its silence limit.
       */
      const readyAndHeardSince = (sinceMs: number) => async () => {
        const b = await backend();
        const heard = b?.lastHeartbeatTime;
        const heardMs = heard ? Number(heard.seconds) * 1000 + heard.nanos / 1e6 : 0;
        return b?.state === BackendState.READY && heardMs > sinceMs;
      };
      /** A stream that holds its slot a while: in flight when the freeze starts. */
      const held = (holdMs: number) =>
        (async () => {
          let bytes = 0;
          const params = {
            [ECHO_PARAMS.bytes]: String(ANSWER_BYTES),
            [ECHO_PARAMS.chunkBytes]: String(16 * 1024),
            [ECHO_PARAMS.holdMs]: String(holdMs),
          };
          for await (const chunk of client.tts.streamSynthesize({ text: "held", params })) {
            bytes += chunk.data.byteLength;
          }
          return bytes;
        })().catch((err: unknown) => String(err));
      const figures: string[] = [];
      try {
        await agent.connected;
        await waitFor(ready, { what: "agent ready" });
        // One warm-up cycle's worth of calls first: the baseline is a process that has served.
        expect(await held(10)).toBe(STREAM_BYTES);
        const baselineMb = rssMb(pid);
        let dropped = 0;
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          const freezeMs = Math.round(MIN_FREEZE_MS + random() * (MAX_FREEZE_MS - MIN_FREEZE_MS));
          const inFlight = [held(3000), held(3000)];
          await waitFor(async () => ((await backend())?.inFlight ?? 0) >= 2 || undefined, {
            timeoutMs: 10_000,
            what: "two calls running on the agent",
          }).catch(() => undefined); // the load report is a heartbeat behind; go on regardless
          agent.proc.child.kill("SIGSTOP");
          const frozenAt = performance.now();
          // A call sent while the agent is frozen: it must end (elsewhere: nowhere), never hang.
          const meanwhile = held(10);
          await new Promise((r) => setTimeout(r, freezeMs));
          const wasDropped = !(await backend());
          if (wasDropped) dropped++;
          agent.proc.child.kill("SIGCONT");
          const thawedAt = performance.now();
          await waitFor(readyAndHeardSince(Date.now()), {
            timeoutMs: BACKOFF_CAP_MS + 1000 + 10_000,
            intervalMs: 20,
            what: `agent READY again after cycle ${cycle} (seed ${seed})`,
          }).catch((err: unknown) => {
            const tail = agent.proc.logs.slice(-12).map((l) => `${l.msg} ${l.reason ?? ""}`);
            throw new Error(
              `${String(err)}; agent rss ${rssMb(pid).toFixed(0)} MB; last agent logs:\n${tail.join("\n")}`,
            );
          });
          const backMs = performance.now() - thawedAt;
          figures.push(
            `cycle ${cycle}: frozen ${Math.round(thawedAt - frozenAt)} ms, ${wasDropped ? "dropped" : "kept"}, READY ${Math.round(backMs)} ms after SIGCONT, rss ${rssMb(pid).toFixed(0)} MB`,
          );
          // The bound, checked with slack for a loaded machine's scheduling only.
          expect(backMs, figures.at(-1)).toBeLessThan(BACKOFF_CAP_MS + 1000 + 2000);
          await Promise.all([...inFlight, meanwhile]);
          // It serves again: a whole answer arrives.
          expect(await held(10)).toBe(STREAM_BYTES);
        }
        const growthMb = rssMb(pid) - baselineMb;
        console.info(
          `[figures] seed ${seed}; ${dropped}/${CYCLES} freezes dropped by the gateway\n${figures.join("\n")}\nagent RSS growth ${growthMb.toFixed(1)} MB`,
        );
        expect(growthMb).toBeLessThan(MAX_RSS_GROWTH_MB);
      } finally {
        agent.proc.child.kill("SIGCONT");
        await agent.proc.stop("SIGKILL");
      }
    },
    30_000 + CYCLES * 20_000,
  );
});
