/**
 * REST/JSON against a real gateway and agent process (real espeak-ng, real sockets): the README's
 * curl examples are run exactly as written there (only the port differs), plus auth, seed paths,
 * 404/405 and the streamed audio arriving in chunks before synthesis ends.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { parseWav, wavDurationMs } from "../../services/audio/wav.js";
import { generateToken } from "../../services/auth/token-codec.js";
import { waitFor } from "../helpers/voxgate-process.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const run = promisify(execFile);
const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const README_URL = "http://127.0.0.1:8080";
const MAX_TEXT_CHARS = 1000;

/** The README's REST examples: each `<!-- rest-example: NAME -->` followed by a sh code block. */
function readmeExamples(): Map<string, string> {
  const examples = new Map<string, string>();
  for (const m of README.matchAll(/<!-- rest-example: (\S+) -->\n```sh\n([\s\S]*?)\n```/g)) {
    examples.set(m[1] ?? "", m[2] ?? "");
  }
  return examples;
}

/** Splits a `curl -i` output into status, lower-cased headers and body. */
function parseCurlInclude(output: string) {
  const [head = "", ...rest] = output.split("\r\n\r\n");
  const [statusLine = "", ...headerLines] = head.split("\r\n");
  const headers = new Map(
    headerLines.map((l) => {
      const at = l.indexOf(":");
      return [l.slice(0, at).toLowerCase(), l.slice(at + 1).trim()] as const;
    }),
  );
  return { status: Number(statusLine.split(" ")[1]), headers, body: rest.join("\r\n\r\n") };
}

describe("REST/JSON on a real gateway and agent", () => {
  let gateway: GatewayProcess;
  let agent: ReturnType<typeof startAgentProcess> | undefined;
  let dir = "";
  const examples = readmeExamples();

  /** Runs README example `name` in the scratch directory, against this test's gateway. */
  const runExample = async (name: string) => {
    const script = examples.get(name);
    if (!script) throw new Error(`README has no rest-example "${name}"`);
    expect(script).toContain(README_URL);
    const { stdout } = await run("sh", ["-c", script.replaceAll(README_URL, gateway.url)], {
      cwd: dir,
      env: { ...process.env, VOXGATE_TOKEN: gateway.clientToken },
      maxBuffer: 32 * 1024 * 1024,
    });
    return stdout;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "voxgate-rest-"));
    gateway = await startGatewayProcess({
      env: { VOXGATE_MAX_TEXT_CHARS: String(MAX_TEXT_CHARS) },
    });
    agent = startAgentProcess(gateway, "rest-agent");
    await agent.connected;
    // Connected is not yet routable: wait until the registry has proven the agent ready.
    await waitFor(
      async () => {
        const res = await fetch(`${gateway.url}/v1/backends`, {
          headers: { authorization: `Bearer ${gateway.clientToken}` },
        });
        const body = (await res.json()) as { backends?: Array<{ state: string }> };
        return body.backends?.some((b) => b.state === "BACKEND_STATE_READY");
      },
      { timeoutMs: 30_000, what: "a ready backend" },
    );
  }, 60_000);

  afterAll(async () => {
    await agent?.proc.stop();
    const code = await gateway?.proc.stop();
    await rm(dir, { recursive: true, force: true });
    expect(code).toBe(0);
  });

  it("the README shows every example this test runs", () => {
    expect([...examples.keys()].sort()).toEqual(
      ["bad-request", "metrics", "no-token", "stream", "tts", "voices"].sort(),
    );
  });

  it("README: POST /v1/tts writes a raw WAV with exact sizes", async () => {
    await runExample("tts");
    const bytes = new Uint8Array(await readFile(join(dir, "hello.wav")));
    expect(Buffer.from(bytes.subarray(0, 4)).toString()).toBe("RIFF");
    const wav = parseWav(bytes);
    expect(wav.dataOffset + wav.dataBytes).toBe(bytes.byteLength);
    expect(wavDurationMs(wav)).toBeGreaterThan(500);
  });

  it("README: POST /v1/speech:stream sends chunked audio starting with a RIFF header", async () => {
    await runExample("stream");
    const headers = (await readFile(join(dir, "headers.txt"), "utf8")).toLowerCase();
    expect(headers).toMatch(/^http\/1\.1 200/);
    expect(headers).toContain("transfer-encoding: chunked");
    expect(headers).toContain("content-type: audio/wav");
    expect(headers).toMatch(/x-voxgate-backend: \S+/);
    const bytes = await readFile(join(dir, "stream.wav"));
    expect(bytes.subarray(0, 4).toString()).toBe("RIFF");
    expect(bytes.subarray(8, 12).toString()).toBe("WAVE");
    expect(bytes.byteLength).toBeGreaterThan(22_050);
  });

  it("README: GET /api/voices lists the agent's voices as JSON", async () => {
    const body = JSON.parse(await runExample("voices")) as {
      voices: Array<{ id: string; engine: string; type: string }>;
      nextPageToken?: string;
    };
    expect(body.voices).toHaveLength(2);
    expect(body.voices[0]?.engine).toBe("espeak-ng");
    expect(body.voices[0]?.type).toBe("VOICE_TYPE_PRESET");
    expect(body.nextPageToken).toBeTruthy();
  });

  it("README: GET /v1/metrics is Prometheus text", async () => {
    const text = await runExample("metrics");
    expect(text).toMatch(/^# (HELP|TYPE) voxgate_/m);
    expect(text).toContain('voxgate_backends{state="ready"} 1');
    const res = await fetch(`${gateway.url}/v1/metrics`, {
      headers: { authorization: `Bearer ${gateway.clientToken}` },
    });
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    await res.arrayBuffer();
  });

  it("README: a clone without reference audio answers 400 INVALID_ARGUMENT as JSON", async () => {
    const res = parseCurlInclude(await runExample("bad-request"));
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(res.body)).toMatchObject({ code: Code.InvalidArgument, details: [] });
  });

  it("README: a call without a token gets 401 as JSON", async () => {
    const res = parseCurlInclude(await runExample("no-token"));
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("Bearer");
    expect(JSON.parse(res.body)).toEqual({
      code: Code.Unauthenticated,
      message: "missing token: send Authorization: Bearer <token>",
      details: [],
    });
  });

  const rest = (path: string, init: RequestInit & { token?: string | null } = {}) => {
    const { token, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (token !== null) headers.set("authorization", `Bearer ${token ?? gateway.clientToken}`);
    return fetch(`${gateway.url}${path}`, { ...rest, headers });
  };

  it("refuses a wrong token and an agent token with 401, before reading the body", async () => {
    for (const token of [generateToken(), gateway.agentToken]) {
      const res = await rest("/v1/tts", { method: "POST", token, body: '{"text":"hi"}' });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: Code.Unauthenticated });
    }
  });

  it("answers every seed path: served ones work, later ones say UNIMPLEMENTED (501)", async () => {
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      rest(path, { method: "POST", body, headers });
    const clip = await post("/tts", '{"text":"Old path."}');
    expect(clip.status).toBe(200);
    expect(clip.headers.get("content-type")).toBe("audio/wav");
    expect(clip.headers.get("x-voxgate-backend")).toBeTruthy();
    expect(clip.headers.get("x-voxgate-attempts")).toBe("1");
    expect(
      Buffer.from(await clip.arrayBuffer())
        .subarray(0, 4)
        .toString(),
    ).toBe("RIFF");
    for (const [path, body, headers] of [
      // Served: a prompt id that is no digest and audio that is no WAV are refused (400).
      ["/v1/tts", '{"text":"Cloned.","prompt_id":"abc"}', {}],
      ["/v1/audio/analyze", "RIFF....", { "content-type": "audio/wav" }],
    ] as const) {
      const res = await post(path, body, headers);
      const json = (await res.json()) as { code: number };
      expect(res.status, `${path}: ${JSON.stringify(json)}`).toBe(400);
      expect(json.code).toBe(Code.InvalidArgument);
    }
    for (const [path, body, headers] of [
      // JobService is served: a job spec without a kind is refused (400).
      ["/v1/jobs", '{"spec":{}}', {}],
      ["/jobs/dispatch", "{}", {}],
    ] as const) {
      const res = await post(path, body, headers);
      const json = (await res.json()) as { code: number };
      expect(res.status, `${path}: ${JSON.stringify(json)}`).toBe(400);
      expect(json.code).toBe(Code.InvalidArgument);
    }
    const jobs = await rest("/v1/jobs?page_size=1");
    expect(jobs.status).toBe(200);
    expect(await jobs.json()).toBeTypeOf("object");
  });

  it("answers 404 and 405 as JSON, and keeps Connect working beside REST", async () => {
    const missing = await rest("/v1/nowhere", { token: null });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: Code.NotFound });
    const wrongMethod = await rest("/v1/tts", { token: null });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    await wrongMethod.arrayBuffer();

    const restVoices = (await (await rest("/v1/voices?pageSize=1")).json()) as {
      voices: Array<{ id: string }>;
    };
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      const connectVoices = await client.voices.listVoices({ pageSize: 1 });
      expect(restVoices.voices[0]?.id).toBe(connectVoices.voices[0]?.id);
    } finally {
      client.close();
    }
  });

  it("maps limits and bad input to 400 with the reason, and keeps the request id", async () => {
    const long = await rest("/v1/tts", {
      method: "POST",
      body: JSON.stringify({ text: "x".repeat(MAX_TEXT_CHARS + 1) }),
      headers: { "x-request-id": "rest-e2e-1" },
    });
    expect(long.status).toBe(400);
    expect(long.headers.get("x-request-id")).toBe("rest-e2e-1");
    expect(((await long.json()) as { message: string }).message).toContain(
      "VOXGATE_MAX_TEXT_CHARS",
    );
    const unknown = await rest("/v1/voices?colour=blue");
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toContain('"colour"');
  });

  it("a short deadline header ends a long synthesis with 504", async () => {
    const res = await rest("/v1/tts", {
      method: "POST",
      body: JSON.stringify({ text: "A long text. ".repeat(30) }),
      headers: { "x-voxgate-timeout-ms": "1" },
    });
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ code: Code.DeadlineExceeded });
  });

  it("streamed audio arrives in chunks, the first long before the last", async () => {
    const text = Array.from({ length: 16 }, (_, i) => `This is streamed sentence ${i + 1}.`).join(
      " ",
    );
    // A warm engine, so the first chunk measures streaming, not a cold worker.
    await (await rest("/v1/tts", { method: "POST", body: '{"text":"Warm up."}' })).arrayBuffer();
    const { status, encoding, firstMs, lastMs, chunks, bytes } = await new Promise<{
      status: number | undefined;
      encoding: string | undefined;
      firstMs: number;
      lastMs: number;
      chunks: number;
      bytes: number;
    }>((resolve, reject) => {
      const sent = performance.now();
      const req = http.request(
        `${gateway.url}/v1/speech:stream`,
        {
          method: "POST",
          headers: {
            authorization: `Bearer ${gateway.clientToken}`,
            "content-type": "application/json",
          },
        },
        (res) => {
          let firstMs = 0;
          let chunks = 0;
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            if (chunks === 0) firstMs = performance.now() - sent;
            chunks++;
            bytes += chunk.byteLength;
          });
          res.on("end", () =>
            resolve({
              status: res.statusCode,
              encoding: res.headers["transfer-encoding"],
              firstMs,
              lastMs: performance.now() - sent,
              chunks,
              bytes,
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ text }));
    });
    expect(status).toBe(200);
    expect(encoding).toBe("chunked");
    expect(chunks).toBeGreaterThan(2);
    expect(bytes).toBeGreaterThan(22_050 * 2 * 4);
    expect(firstMs).toBeLessThan(lastMs / 2);
  });
});
