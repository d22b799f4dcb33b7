/**
 * The OpenAI-compatible API end to end, as an OpenAI user meets it: the official `openai` SDK
 * pointed at a real gateway (public and agent ports on 127.0.0.1:0) with a real Agent dialling it
 * over gRPC and hosting the real espeak-ng engine.
 */
import OpenAI, {
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
} from "openai";
import { Stream } from "openai/streaming";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "../../services/agent/agent.js";
import { agentSettings } from "../../services/agent/agent-settings.js";
import { readMp3Frames } from "../../services/audio/mp3-encoder.js";
import { parseWav, WAV_HEADER_BYTES, wavDurationMs } from "../../services/audio/wav.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { settingDefaults } from "../../services/config/settings.js";
import { engineHostLimitsFromSettings } from "../../services/engine-host/engine-host-handler.js";
import { createEngineHost } from "../../services/engine-host/index.js";
import { createEspeakEngine, type TtsEngine } from "../../services/engines/index.js";
import { createGateway, type Gateway } from "../../services/gateway/index.js";
import { startInProcessAgent, waitForBackendReady } from "../helpers/in-process-agent.js";

const CLIENT_TOKEN = "vxg_openai-sdk-client-token";
const VOICES_ONLY_TOKEN = "vxg_openai-sdk-voices-only";
const AGENT_TOKEN = "vxg_openai-sdk-agent-token";
const AGENT_ID = "espeak-box";
const MAX_TEXT_CHARS = 300;
const LIMITS = {
  maxTextChars: MAX_TEXT_CHARS,
  maxRequestBytes: 64 * 1024,
  maxClipBytes: 16 * 1024 * 1024,
  defaultTimeoutMs: 60_000,
  maxTimeoutMs: 60_000,
};

const silent = pino({ level: "silent" });
/** The gateway's log lines at info and above, parsed. */
const gatewayLogLines: Record<string, unknown>[] = [];
const gatewayLog = pino(
  { level: "info" },
  { write: (line: string) => void gatewayLogLines.push(JSON.parse(line)) },
);
const HELLO = "Hello from the OpenAI compatible speech API.";
/** Eight sentences: espeak-ng speaks them one by one, so the audio leaves in several pieces. */
const SENTENCES = [
  "This is the first sentence.",
  "Here comes a second one.",
  "A third sentence follows.",
  "The fourth is about a gateway.",
  "The fifth is about a GPU.",
  "Number six is short.",
  "Seven is nearly done.",
  "And this is the end.",
].join(" ");

let gateway: Gateway;
let engine: TtsEngine;
let agent: Agent;
let agentRun: Promise<void>;
let baseUrl = "";

function sdk(apiKey = CLIENT_TOKEN): OpenAI {
  // No retries: a refused call must fail at once, and count as one call.
  return new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0, timeout: 30_000 });
}

async function failureOf(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error("the call should have failed");
}

/** Reads a response body chunk by chunk, noting when each chunk arrived. */
async function readChunks(body: ReadableStream<Uint8Array>) {
  const chunks: { bytes: Uint8Array; at: number }[] = [];
  for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push({ bytes, at: performance.now() });
  }
  return chunks;
}

const join = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

beforeAll(async () => {
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "app", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "voices"] },
      { name: "catalog", sha256: hashToken(VOICES_ONLY_TOKEN), scopes: ["voices"] },
      { name: "gpu-hosts", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: LIMITS,
    log: gatewayLog,
  });
  const addresses = await gateway.listen();
  baseUrl = addresses.publicUrl;
  engine = await createEspeakEngine();
  const host = createEngineHost({
    ...engineHostLimitsFromSettings(settingDefaults(agentSettings)),
    engines: [engine],
    slots: 2,
  });
  ({ agent, run: agentRun } = startInProcessAgent({
    agentPort: addresses.agentPort,
    token: AGENT_TOKEN,
    id: AGENT_ID,
    engines: [engine],
    slots: 2,
    host,
    drainTimeoutMs: 5_000,
  }));
  await waitForBackendReady(gateway.registry, AGENT_ID);
}, 60_000);

afterAll(async () => {
  await agent?.shutdown();
  await agentRun;
  await gateway?.close(500);
  await engine?.close();
});

describe("openai SDK: audio.speech.create", () => {
  it("gets a whole WAV of the spoken text, naming the backend", async () => {
    const response = await sdk().audio.speech.create({
      model: "tts-1",
      voice: "alloy",
      input: HELLO,
      response_format: "wav",
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("audio/wav");
    expect(response.headers.get("x-voxgate-backend")).toBe(AGENT_ID);
    // "alloy" is looked up as a prompt name first; that NOT_FOUND is no failed call in the log.
    expect(gatewayLogLines.some((line) => line.msg === "backend added")).toBe(true);
    expect(gatewayLogLines.filter((line) => line.code === "NotFound")).toEqual([]);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const wav = parseWav(bytes);
    expect(wav).toMatchObject({ sampleRateHz: 22050, channels: 1, bitsPerSample: 16 });
    expect(wav.dataOffset).toBe(WAV_HEADER_BYTES);
    expect(wav.dataOffset + wav.dataBytes).toBe(bytes.byteLength);
    expect(wavDurationMs(wav)).toBeGreaterThan(1500);
    // Speech, not silence.
    const samples = new Int16Array(bytes.buffer.slice(WAV_HEADER_BYTES));
    expect(Math.max(...samples.map((s) => Math.abs(s)))).toBeGreaterThan(1000);
  });

  it("gets a whole MP3 (the default format) as long as the WAV of the same text", async () => {
    const wavResponse = await sdk().audio.speech.create({
      model: "tts-1",
      voice: "en-us",
      input: HELLO,
      response_format: "wav",
    });
    const wavMs = wavDurationMs(parseWav(new Uint8Array(await wavResponse.arrayBuffer())));

    const response = await sdk().audio.speech.create({
      model: "tts-1",
      voice: "en-us",
      input: HELLO,
    });
    expect(response.headers.get("content-type")).toBe("audio/mpeg");
    const mp3 = new Uint8Array(await response.arrayBuffer());
    expect(mp3[0]).toBe(0xff);
    expect((mp3[1] ?? 0) & 0xe0).toBe(0xe0);
    const info = readMp3Frames(mp3);
    expect(info).toMatchObject({ sampleRateHz: 22050, channels: 1, bitrateKbps: 64 });
    // LAME's delay and last-frame padding add at most a few 26 ms frames.
    expect(info.durationMs).toBeGreaterThanOrEqual(wavMs);
    expect(info.durationMs).toBeLessThan(wavMs + 150);
    // 64 kbit/s: about 8 bytes per ms.
    expect(mp3.byteLength).toBeLessThan((info.durationMs * 64) / 8 + 1000);
  });

  it.each([
    ["mp3", "audio/mpeg"],
    ["wav", "audio/wav"],
  ] as const)(
    "streams %s through .asResponse(): several chunks, spread over the synthesis",
    async (format, contentType) => {
      const response = await sdk()
        .audio.speech.create({
          model: "gpt-4o-mini-tts",
          voice: { id: "en-us" },
          input: SENTENCES,
          response_format: format,
          instructions: "Speak calmly.",
        })
        .asResponse();
      expect(response.headers.get("content-type")).toBe(contentType);
      expect(response.headers.get("transfer-encoding")).toBe("chunked");
      const chunks = await readChunks(response.body as ReadableStream<Uint8Array>);
      // The client shares this process's event loop, so a busy machine can merge pieces; several
      // still arrive apart, the later sentences later.
      const sizes = JSON.stringify(chunks.map((c) => c.bytes.byteLength));
      expect(chunks.length, sizes).toBeGreaterThanOrEqual(2);
      expect((chunks.at(-1)?.at ?? 0) - (chunks[0]?.at ?? 0), sizes).toBeGreaterThan(0);
      const bytes = join(chunks.map((c) => c.bytes));
      if (format === "mp3") {
        expect(readMp3Frames(bytes).durationMs).toBeGreaterThan(6000);
      } else {
        const wav = parseWav(bytes);
        expect(wavDurationMs(wav)).toBeGreaterThan(6000);
        // A stream cannot know its length: the streaming header, as OpenAI sends it.
        expect(new DataView(bytes.buffer).getUint32(40, true)).toBe(0xffff_ffff);
      }
    },
  );

  it("streams SSE speech.audio.delta events the SDK's own SSE parser reads, then speech.audio.done", async () => {
    const response = await sdk()
      .audio.speech.create({
        model: "gpt-4o-mini-tts",
        voice: "coral",
        input: SENTENCES,
        response_format: "mp3",
        stream_format: "sse",
      })
      .asResponse();
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    type SpeechEvent =
      | { type: "speech.audio.delta"; audio: string }
      | { type: "speech.audio.done"; usage: Record<string, number> };
    const events: SpeechEvent[] = [];
    for await (const event of Stream.fromSSEResponse<SpeechEvent>(
      response,
      new AbortController(),
    )) {
      events.push(event);
    }
    const deltas = events.filter((e) => e.type === "speech.audio.delta");
    expect(deltas.length).toBeGreaterThanOrEqual(2);
    expect(events.at(-1)).toEqual({
      type: "speech.audio.done",
      usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
    });
    expect(events.filter((e) => e.type === "speech.audio.done")).toHaveLength(1);
    const mp3 = join(deltas.map((e) => Buffer.from(e.audio, "base64")));
    const info = readMp3Frames(mp3);
    expect(info.sampleRateHz).toBe(22050);
    expect(info.durationMs).toBeGreaterThan(6000);
  });

  it("returns raw PCM at OpenAI's 24 kHz (espeak-ng speaks at 22.05), saying the rate in two headers", async () => {
    const response = await sdk().audio.speech.create({
      model: "espeak-ng",
      voice: "en-us",
      input: HELLO,
      response_format: "pcm",
      speed: 2,
    });
    expect(response.headers.get("content-type")).toBe("audio/L16; rate=24000; channels=1");
    expect(response.headers.get("x-voxgate-sample-rate")).toBe("24000");
    const pcm = new Uint8Array(await response.arrayBuffer());
    expect(pcm.byteLength % 2).toBe(0);
    expect(pcm.byteLength).toBeGreaterThan(24000); // over half a second
  });

  it("refuses a wrong key with the SDK's AuthenticationError", async () => {
    const error = await failureOf(() =>
      sdk("vxg_wrong").audio.speech.create({ model: "tts-1", voice: "alloy", input: HELLO }),
    );
    expect(error).toBeInstanceOf(AuthenticationError);
    const auth = error as AuthenticationError;
    expect(auth.status).toBe(401);
    expect(auth.message).toBe("401 invalid token");
    expect(auth.type).toBe("invalid_request_error");
    expect(auth.code).toBe("unauthenticated");
  });

  it("refuses a token without the tts scope with PermissionDeniedError", async () => {
    const error = await failureOf(() =>
      sdk(VOICES_ONLY_TOKEN).audio.speech.create({ model: "tts-1", voice: "alloy", input: HELLO }),
    );
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as PermissionDeniedError).message).toContain('lacks the "tts" scope');
  });

  it.each([
    [{ input: "" }, "input", "400 text is empty"],
    [
      { input: "x".repeat(MAX_TEXT_CHARS + 1) },
      "input",
      `400 text is ${MAX_TEXT_CHARS + 1} characters; the limit is ${MAX_TEXT_CHARS}`,
    ],
    [
      { input: HELLO, response_format: "ogg" as "opus" },
      "response_format",
      '400 response_format "ogg" is not one of mp3, opus, aac, flac, wav, pcm',
    ],
    [{ input: HELLO, speed: 9 }, "speed", "400 speed must be a number from 0.25 to 4, got 9"],
  ])("refuses %j with BadRequestError naming the field", async (params, param, message) => {
    const callsBefore = gateway.registry.get(AGENT_ID)?.callsTotal;
    const error = await failureOf(() =>
      sdk().audio.speech.create({ model: "tts-1", voice: "alloy", ...params }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    const bad = error as BadRequestError;
    expect(bad.message.startsWith(message)).toBe(true);
    expect(bad.param).toBe(param);
    expect(bad.type).toBe("invalid_request_error");
    expect(bad.code).toBe("invalid_argument");
    // Nothing was dispatched to the backend.
    expect(gateway.registry.get(AGENT_ID)?.callsTotal).toBe(callsBefore);
  });

  it("answers an unknown model and an unknown voice with NotFoundError", async () => {
    const model = await failureOf(() =>
      sdk().audio.speech.create({ model: "whisper-9", voice: "alloy", input: HELLO }),
    );
    expect(model).toBeInstanceOf(NotFoundError);
    expect((model as NotFoundError).code).toBe("model_not_found");
    expect((model as NotFoundError).message).toContain("espeak-ng");

    const voice = await failureOf(() =>
      sdk().audio.speech.create({ model: "tts-1", voice: { id: "no-such-voice" }, input: HELLO }),
    );
    expect(voice).toBeInstanceOf(NotFoundError);
    expect((voice as NotFoundError).message).toContain("no-such-voice");
  });
});

describe("OpenAI-compatible listings over plain fetch", () => {
  const get = (path: string, token: string | null = CLIENT_TOKEN) =>
    fetch(`${baseUrl}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it("GET /v1/audio/voices lists the engine's voices with id and name", async () => {
    const response = await get("/v1/audio/voices", VOICES_ONLY_TOKEN);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      voices: { id: string; name: string; engine: string; languages: string[] }[];
    };
    // espeak-ng has well over one page (50) of voices: every page was read.
    expect(body.voices.length).toBeGreaterThan(50);
    const enUs = body.voices.find((v) => v.id === "en-us");
    expect(enUs?.engine).toBe("espeak-ng");
    expect(enUs?.name).toBeTruthy();
    expect(new Set(body.voices.map((v) => `${v.engine}/${v.id}`)).size).toBe(body.voices.length);
  });

  it("GET /v1/models lists OpenAI's names and the engine, in OpenAI's list format", async () => {
    const response = await get("/v1/models");
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      object: string;
      data: { id: string; object: string; owned_by: string; created: number }[];
    };
    expect(body.object).toBe("list");
    const ids = body.data.map((m) => m.id);
    expect(ids).toEqual(
      expect.arrayContaining(["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "espeak-ng"]),
    );
    expect(body.data.find((m) => m.id === "espeak-ng")).toMatchObject({
      object: "model",
      owned_by: AGENT_ID,
    });
    // The SDK reads the same list.
    const listed: string[] = [];
    for await (const model of sdk().models.list()) listed.push(model.id);
    expect(listed).toEqual(ids);
  });

  it("GET /v1/audio/models lists the speech models only, in OpenAI's list format", async () => {
    const [speech, all] = await Promise.all([get("/v1/audio/models"), get("/v1/models")]);
    expect(speech.status).toBe(200);
    const body = (await speech.json()) as { object: string; data: { id: string }[] };
    const allIds = ((await all.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(body.object).toBe("list");
    const ids = body.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["tts-1", "tts-1-hd", "espeak-ng"]));
    // No backend here runs a language model, so the speech list is the whole list.
    expect(ids).toEqual(allIds);
    const wrongMethod = await fetch(`${baseUrl}/v1/audio/models`, {
      method: "POST",
      headers: { authorization: `Bearer ${CLIENT_TOKEN}` },
    });
    expect(wrongMethod.status).toBe(405);
    expect((await get("/v1/audio/models", null)).status).toBe(401);
  });

  it("answers 503 with Retry-After while no backend can speak", async () => {
    // A second gateway with no agent: the speech call finds no backend.
    const empty = createGateway({
      public: { host: "127.0.0.1", port: 0 },
      agent: { host: "127.0.0.1", port: 0 },
      tokens: [{ name: "app", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts"] }],
      limits: LIMITS,
      log: silent,
    });
    const { publicUrl } = await empty.listen();
    try {
      const response = await fetch(`${publicUrl}/v1/audio/speech`, {
        method: "POST",
        headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "tts-1", voice: "alloy", input: HELLO }),
      });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(((await response.json()) as { error: { type: string } }).error.type).toBe(
        "server_error",
      );
    } finally {
      await empty.close(500);
    }
  });

  it("answers without a token 401 with an OpenAI error object, before reading the body", async () => {
    const response = await get("/v1/audio/voices", null);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer realm="voxgate"');
    expect(await response.json()).toEqual({
      error: {
        message: "missing token: send Authorization: Bearer <token>",
        type: "invalid_request_error",
        param: null,
        code: "unauthenticated",
      },
    });
  });

  it("answers a wrong method 405 and a body that is not JSON 400", async () => {
    const wrongMethod = await get("/v1/audio/speech");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    expect(((await wrongMethod.json()) as { error: { code: string } }).error.code).toBe(
      "method_not_allowed",
    );
    const notJson = await fetch(`${baseUrl}/v1/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
      body: "{input:",
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { message: string } }).error.message).toMatch(
      /^the request body is not valid JSON/,
    );
  });

  it("answers a body over the request limit 413", async () => {
    const response = await fetch(`${baseUrl}/v1/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tts-1", voice: "alloy", input: "x".repeat(70 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
      "VOXGATE_MAX_REQUEST_BYTES",
    );
  });
});
