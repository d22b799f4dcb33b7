/**
 * `npm start` as a new user runs it: one `voxgate start` process (gateway + spawned CPU agent),
 * then the CLI and curl against it, with real processes, real espeak-ng and real sockets.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { parseWav, wavDurationMs } from "../../services/audio/wav.js";
import { generateToken } from "../../services/auth/token-codec.js";
import {
  CLI_ENTRY,
  spawnVoxgate,
  type VoxgateProcess,
  waitFor,
} from "../helpers/voxgate-process.js";

const run = promisify(execFile);
const TEN_SENTENCES = Array.from(
  { length: 10 },
  (_, i) => `This is sentence number ${i + 1} of a short story about a gateway.`,
).join(" ");

describe("npm start: gateway and a local CPU agent with zero config", () => {
  const token = generateToken();
  let stack: VoxgateProcess;
  let url = "";
  let dir = "";
  let startedAt = 0;
  let readyAfterMs = 0;
  let bannerReadyz: { checks?: Record<string, string> } = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "voxgate-e2e-"));
    startedAt = performance.now();
    stack = spawnVoxgate(["start"], {
      VOXGATE_PORT: "0",
      VOXGATE_AGENT_PORT: "0",
      VOXGATE_TOKEN: token,
      VOXGATE_DATA_DIR: dir,
    });
    // The banner waits for the local agent (espeak-ng warming up), hence the long wait.
    await waitFor(() => stack.stderr().includes("voxgate is running"), {
      timeoutMs: 90_000,
      what: "the start banner",
    });
    // Asked the moment the banner is out: the agent it invites calls to is already routable.
    bannerReadyz = (await (await fetch(`${bannerUrl()}/readyz`)).json()) as typeof bannerReadyz;
    url = String((await stack.waitForLog((l) => l.msg === "voxgate ready")).publicUrl);
    await stack.waitForLog((l) => l.msg === "agent ready", 60_000);
    readyAfterMs = performance.now() - startedAt;
  }, 150_000);

  /** The API URL as the banner prints it. */
  function bannerUrl(): string {
    const match = /API\s+(http:\/\/\S+)/.exec(stack.stderr());
    if (!match?.[1]) throw new Error(`no API URL in the banner: ${stack.stderr()}`);
    return match[1];
  }

  it("prints its banner only once the local agent is ready, with the VOXGATE_URL to export", () => {
    // /readyz's backend check passes only with a READY backend that synthesizes: the local agent.
    // (Its database check may still say "opening" on a loaded machine.)
    expect(bannerReadyz.checks?.backends).toBe("ok");
    expect(bannerUrl()).toBe(url);
    // Not the client commands' default port: the banner says which URL they need.
    expect(stack.stderr()).toContain(`export VOXGATE_URL=${url}`);
  });

  afterAll(async () => {
    const code = await stack?.stop("SIGTERM");
    await rm(dir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  it("keeps the local agent's prompt cache in this system's data directory", async () => {
    // Not the machine-wide default <tmp>/voxgate-agent-local-cpu, which every npm start shares.
    const { promptCacheDir } = await stack.waitForLog((l) => l.msg === "prompt cache");
    expect(String(promptCacheDir)).toBe(join(dir, "agent-prompts"));
  });

  it("creates its new database only once the local agent is ready, and then opens it", async () => {
    // Creating a database costs seconds of CPU (initdb, or a template's copy and first open) that
    // would compete with the agent's engine start on 2 cores: it waits for the agent (issue 17).
    const opening = await stack.waitForLog(
      (l) => l.msg === "opening the new embedded database in the background",
      60_000,
    );
    const gatewayLines = stack.logs.filter((l) => l.service === "gateway");
    const agentReadyAt = gatewayLines.findIndex((l) => l.msg === "agent ready");
    expect(agentReadyAt).toBeGreaterThanOrEqual(0);
    expect(gatewayLines.indexOf(opening)).toBeGreaterThan(agentReadyAt);
    const open = await stack.waitForLog((l) => l.msg === "database open", 120_000);
    expect(["template", "initdb"]).toContain(open.created);
  });

  it("prints the API URL and the token to use", () => {
    expect(stack.stderr()).toContain(url);
    expect(stack.stderr()).toContain(token);
  });

  it("the CLI writes a valid WAV of the spoken text", async () => {
    const file = join(dir, "hello.wav");
    const { stderr } = await run(
      process.execPath,
      [CLI_ENTRY, "speak", "Hello from voxgate", "-o", file],
      {
        env: { ...process.env, VOXGATE_URL: url, VOXGATE_TOKEN: token },
      },
    );
    const bytes = new Uint8Array(await readFile(file));
    expect(Buffer.from(bytes.subarray(0, 4)).toString()).toBe("RIFF");
    expect(Buffer.from(bytes.subarray(8, 12)).toString()).toBe("WAVE");
    const wav = parseWav(bytes);
    expect(wav.bitsPerSample).toBe(16);
    expect(wav.channels).toBe(1);
    // Sizes were patched after streaming: the data chunk is exactly the rest of the file.
    expect(wav.dataOffset + wav.dataBytes).toBe(bytes.byteLength);
    expect(wavDurationMs(wav)).toBeGreaterThan(500);
    expect(stderr).toContain("local-cpu");
  });

  it("a Connect-JSON curl call gets audio", async () => {
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "--fail-with-body",
        `${url}/voxgate.v1.TtsService/Synthesize`,
        "-H",
        `Authorization: Bearer ${token}`,
        "-H",
        "Content-Type: application/json",
        "-d",
        JSON.stringify({ text: "Hello from voxgate" }),
      ],
      { maxBuffer: 32 * 1024 * 1024 },
    );
    const body = JSON.parse(stdout) as { contentType: string; data: string };
    expect(body.contentType).toBe("audio/wav");
    const wav = parseWav(new Uint8Array(Buffer.from(body.data, "base64")));
    expect(wavDurationMs(wav)).toBeGreaterThan(500);
  });

  it("streams the first audio of a 10-sentence text long before the last", async () => {
    const client = createVoxgateClient({ baseUrl: url, token, protocol: "grpc" });
    try {
      const sent = performance.now();
      let firstChunkMs = 0;
      let firstChunkBytes = 0;
      let bytes = 0;
      for await (const chunk of client.tts.streamSynthesize({ text: TEN_SENTENCES })) {
        if (bytes === 0) {
          firstChunkMs = performance.now() - sent;
          firstChunkBytes = chunk.data.byteLength;
          expect(chunk.contentType).toBe("audio/wav");
        }
        bytes += chunk.data.byteLength;
      }
      const totalMs = performance.now() - sent;
      console.info(
        `[figures] start→ready ${Math.round(readyAfterMs)} ms; 10 sentences: first chunk ${Math.round(firstChunkMs)} ms, ` +
          `all ${Math.round(totalMs)} ms, ${bytes} bytes`,
      );
      expect(bytes).toBeGreaterThan(22_050 * 2 * 10);
      // Streamed, not sent whole: the first message carries the first sentence, a small share of
      // the audio, and it arrives before the stream ends. (Timing ratios are left to the figure
      // above: on a loaded machine a fast engine finishes all ten within a few scheduler slices.)
      expect(firstChunkBytes).toBeLessThan(bytes / 3);
      expect(firstChunkMs).toBeLessThan(totalMs);
    } finally {
      client.close();
    }
  });

  it("measures the time from start to the first audio byte of a fresh stack", async () => {
    const fresh = spawnVoxgate(["start"], {
      VOXGATE_PORT: "0",
      VOXGATE_AGENT_PORT: "0",
      VOXGATE_TOKEN: token,
    });
    const began = performance.now();
    try {
      const freshUrl = String(
        (await fresh.waitForLog((l) => l.msg === "voxgate ready", 60_000)).publicUrl,
      );
      await fresh.waitForLog((l) => l.msg === "agent ready", 60_000);
      const client = createVoxgateClient({ baseUrl: freshUrl, token });
      try {
        for await (const chunk of client.tts.streamSynthesize({ text: "Hello from voxgate" })) {
          expect(chunk.data.byteLength).toBeGreaterThan(44);
          break;
        }
      } finally {
        client.close();
      }
      console.info(
        `[figures] process start → first audio byte: ${Math.round(performance.now() - began)} ms`,
      );
    } finally {
      expect(await fresh.stop("SIGTERM")).toBe(0);
    }
  }, 90_000);
});
