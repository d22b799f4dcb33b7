/**
 * A gateway whose wall clock steps +1 h and then −1 h (libfaketime from Debian's `faketime`
 * package, preloaded into the gateway process only) keeps its agent session and its running
 * stream: agent silence is measured on the monotonic clock, which libfaketime leaves alone.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

const LIBFAKETIME = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
  .map((arch) => `/usr/lib/${arch}/faketime/libfaketime.so.1`)
  .find((path) => existsSync(path));
/** Longer than the gateway's silence limit (3 × 1 s heartbeats), so a wall-clock bug would show. */
const HOLD_AFTER_STEP_MS = 4000;
const ANSWER_BYTES = 512 * 1024;

describe("a wall-clock step on the gateway", () => {
  const dir = mkdtempSync(join(tmpdir(), "voxgate-faketime-"));
  const clockFile = join(dir, "offset");
  let gateway: GatewayProcess;
  let client: VoxgateClient;

  beforeAll(async () => {
    expect(LIBFAKETIME, "libfaketime (apt package faketime) is needed").toBeDefined();
    writeFileSync(clockFile, "+0\n");
    gateway = await startGatewayProcess({
      env: {
        LD_PRELOAD: LIBFAKETIME ?? "",
        FAKETIME_TIMESTAMP_FILE: clockFile,
        // Re-read the file on every clock call, so a write steps the clock at once.
        FAKETIME_NO_CACHE: "1",
        // A real clock step (NTP, an admin) moves the wall clock only; libfaketime would move the
        // monotonic clock too, backwards on −1 h, which no real system does (Node aborts on it).
        FAKETIME_DONT_FAKE_MONOTONIC: "1",
      },
    });
    client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
  });

  afterAll(async () => {
    client?.close();
    const code = await gateway?.proc.stop();
    expect(code, gateway?.proc.stderr().slice(-2000)).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its agent and a running stream through +1 h and −1 h steps", {
    timeout: 60_000,
  }, async () => {
    const agent = startAgentProcess(gateway, "steady", { VOXGATE_AGENT_ENGINE: "echo" });
    try {
      await agent.connected;
      const backend = async () =>
        (await client.backends.listBackends({})).backends.find((b) => b.id === "steady");
      await waitFor(async () => (await backend())?.state === BackendState.READY, {
        what: "agent ready",
      });
      const wallBefore = Date.now();
      // One stream held open across both steps (the echo engine pauses after its first piece).
      const stream = (async () => {
        let bytes = 0;
        const params = {
          [ECHO_PARAMS.bytes]: String(ANSWER_BYTES),
          [ECHO_PARAMS.holdMs]: String(2 * HOLD_AFTER_STEP_MS + 1000),
        };
        for await (const chunk of client.tts.streamSynthesize({ text: "steady", params })) {
          bytes += chunk.data.byteLength;
        }
        return bytes;
      })();
      for (const offset of ["+1h", "-1h"]) {
        writeFileSync(clockFile, `${offset}\n`);
        await new Promise((r) => setTimeout(r, HOLD_AFTER_STEP_MS));
        const seen = await backend();
        expect(seen?.state, `after a ${offset} step`).toBe(BackendState.READY);
      }
      // The step reached the gateway: its own view of "now" moved by about an hour.
      const stepped = gateway.proc.logs.at(-1)?.time ?? wallBefore;
      expect(Math.abs(stepped - Date.now())).toBeGreaterThan(50 * 60 * 1000);
      // WAV header (44 bytes) plus every byte of the answer.
      expect(await stream).toBe(ANSWER_BYTES + 44);
      // One session the whole time: the agent was never dropped.
      expect(gateway.proc.logs.filter((l) => l.msg === "agent session closed")).toEqual([]);
      expect(agent.proc.logs.filter((l) => l.msg === "connected to gateway")).toHaveLength(1);
    } finally {
      writeFileSync(clockFile, "+0\n");
      await agent.proc.stop("SIGKILL");
    }
  });
});
