/**
 * Every output format and sample rate, decoded by an independent decoder (Debian's ffmpeg), on a
 * real gateway with a real Agent on 127.0.0.1 hosting an engine that speaks a 1 kHz sine at
 * 22050 Hz (so duration, rate and SNR are known exactly):
 * - `sample_rate_hz` over Connect, gRPC, REST and the OpenAI API: rate as asked, duration within
 *   1 %, SNR of the resampled sine ≥ 60 dB (the bounds);
 * - each OpenAI `response_format` through the `openai` SDK at the default rate and two others;
 * - streaming: the engine is held before its last chunk, and the bytes that reached the client by
 *   then must decode to most of the audio (proof by content, not by clock).
 * Size: 4 s of audio per call, 8 s for AAC (its last frame pads up to 1023 samples, 64 ms at
 * 16 kHz, so the 1 % bound needs clips of 6.4 s or more); about 30 calls.
 */
import OpenAI from "openai";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient, type VoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import type { Agent } from "../../services/agent/agent.js";
import { hashToken } from "../../services/auth/token-codec.js";
import { createGateway, type Gateway } from "../../services/gateway/index.js";
import { type DecodedAudio, probeAndDecode } from "../helpers/ffmpeg-probe.js";
import { startInProcessAgent, waitForBackendReady } from "../helpers/in-process-agent.js";
import { createSineEngine, SINE_ENGINE_TONE_HZ, type SineEngine } from "../helpers/sine-engine.js";
import { channelSamples, sineSnrDb } from "../helpers/sine-signal.js";

const CLIENT_TOKEN = "vxg_audio-formats-client";
const AGENT_TOKEN = "vxg_audio-formats-agent";
const AGENT_ID = "sine-box";
const ENGINE_RATE_HZ = 22050;
const SECONDS = 4;
const TEXT = "A tone, please.";
/** AAC's clips: long enough for its last-frame padding to stay within 1 %. */
const AAC_SECONDS = 8;
const secondsOf = (format: string) => (format.toLowerCase() === "aac" ? AAC_SECONDS : SECONDS);
const textOf = (format: string) => `${secondsOf(format)} seconds of tone.`;
const silent = pino({ level: "silent" });

let gateway: Gateway;
let engine: SineEngine;
let agent: Agent;
let agentRun: Promise<void>;
let publicUrl = "";
const clients: VoxgateClient[] = [];

beforeAll(async () => {
  gateway = createGateway({
    public: { host: "127.0.0.1", port: 0 },
    agent: { host: "127.0.0.1", port: 0 },
    tokens: [
      { name: "app", sha256: hashToken(CLIENT_TOKEN), scopes: ["tts", "voices"] },
      { name: "gpu", sha256: hashToken(AGENT_TOKEN), scopes: ["agent"] },
    ],
    limits: {
      maxTextChars: 5000,
      maxRequestBytes: 64 * 1024,
      maxClipBytes: 64 * 1024 * 1024,
      defaultTimeoutMs: 120_000,
      maxTimeoutMs: 120_000,
    },
    log: silent,
  });
  const addresses = await gateway.listen();
  publicUrl = addresses.publicUrl;
  engine = createSineEngine({ sampleRateHz: ENGINE_RATE_HZ, seconds: SECONDS });
  ({ agent, run: agentRun } = startInProcessAgent({
    agentPort: addresses.agentPort,
    token: AGENT_TOKEN,
    id: AGENT_ID,
    engines: [engine],
    slots: 4,
  }));
  await waitForBackendReady(gateway.registry, AGENT_ID);
}, 60_000);

afterAll(async () => {
  for (const client of clients.splice(0)) client.close();
  await agent?.shutdown();
  await agentRun;
  await gateway?.close(500);
});

function client(protocol: "connect" | "grpc"): VoxgateClient {
  const made = createVoxgateClient({
    baseUrl: publicUrl,
    token: CLIENT_TOKEN,
    protocol,
    httpVersion: protocol === "grpc" ? "2" : "1.1",
    timeoutMs: 120_000,
  });
  clients.push(made);
  return made;
}

function sdk(): OpenAI {
  return new OpenAI({
    baseURL: `${publicUrl}/v1`,
    apiKey: CLIENT_TOKEN,
    maxRetries: 0,
    timeout: 120_000,
  });
}

const join = (parts: readonly Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/**
 * Checks length (within 1 %) and rate of decoded audio, and the sine's SNR where the format is
 * lossless. `extraMs` allows for padding a format cannot mark (MP3 without an info tag).
 */
function expectSine(
  decoded: DecodedAudio,
  rateHz: number,
  lossless: boolean,
  seconds = SECONDS,
  extraMs = 0,
): void {
  expect(decoded.sampleRateHz).toBe(rateHz);
  expect(decoded.channels).toBe(1);
  expect(decoded.durationMs).toBeGreaterThanOrEqual(seconds * 990);
  expect(decoded.durationMs).toBeLessThanOrEqual(seconds * 1010 + extraMs);
  if (lossless) {
    const snr = sineSnrDb(channelSamples(decoded.pcm), rateHz, SINE_ENGINE_TONE_HZ);
    expect(snr).toBeGreaterThanOrEqual(60);
  }
}

/** Reads the input rate an Ogg Opus stream's identification header names. */
function opusHeadInputRate(bytes: Uint8Array): number {
  const at = Buffer.from(bytes).indexOf("OpusHead");
  expect(at).toBeGreaterThan(0);
  return Buffer.from(bytes).readUInt32LE(at + 12);
}

describe("sample_rate_hz on every protocol (the engine speaks at 22050 Hz)", () => {
  it.each([
    ["connect", 16000],
    ["grpc", 48000],
  ] as const)("%s: a streamed WAV at %d Hz", async (protocol, rate) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of client(protocol).tts.streamSynthesize({
      text: TEXT,
      encoding: AudioEncoding.WAV,
      sampleRateHz: rate,
    })) {
      chunks.push(chunk.data);
    }
    expectSine(await probeAndDecode(join(chunks)), rate, true);
  });

  it("connect: a whole PCM clip at 8000 Hz says its rate in the content type", async () => {
    const clip = await client("connect").tts.synthesize({
      text: TEXT,
      encoding: AudioEncoding.PCM,
      sampleRateHz: 8000,
    });
    expect(clip.contentType).toBe("audio/L16; rate=8000; channels=1");
    const decoded = await probeAndDecode(clip.data, {
      inputFormat: "s16le",
      rawRateHz: 8000,
      rawChannels: 1,
    });
    expectSine(decoded, 8000, true);
  });

  it("REST: POST /v1/speech:stream with sample_rate_hz 44100", async () => {
    const response = await fetch(`${publicUrl}/v1/speech:stream`, {
      method: "POST",
      headers: { authorization: `Bearer ${CLIENT_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ text: TEXT, encoding: "AUDIO_ENCODING_FLAC", sample_rate_hz: 44100 }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("audio/flac");
    const decoded = await probeAndDecode(new Uint8Array(await response.arrayBuffer()));
    expect(decoded.codec).toBe("flac");
    expectSine(decoded, 44100, true);
  });

  it("OpenAI: sample_rate_hz (a voxgate extra) on a wav answer", async () => {
    const response = await sdk().audio.speech.create({
      model: "tts-1",
      voice: "alloy",
      input: TEXT,
      response_format: "wav",
      // Not in OpenAI's types: an extra body field, as tools send.
      ...({ sample_rate_hz: 32000 } as object),
    });
    expectSine(await probeAndDecode(new Uint8Array(await response.arrayBuffer())), 32000, true);
  });

  it("refuses a rate outside 8000..192000 before any backend is asked", async () => {
    const calls = gateway.registry.get(AGENT_ID)?.callsTotal;
    await expect(
      client("connect").tts.synthesize({ text: TEXT, sampleRateHz: 4000 }),
    ).rejects.toThrow(/sample_rate_hz 4000 is outside 8000..192000/);
    expect(gateway.registry.get(AGENT_ID)?.callsTotal).toBe(calls);
  });
});

// What each OpenAI format decodes to: codec, container and whether the sine survives exactly.
const FORMATS = {
  wav: { codec: "pcm_s16le", container: "wav", contentType: "audio/wav", lossless: true },
  pcm: { codec: "pcm_s16le", container: "s16le", contentType: "audio/L16", lossless: true },
  mp3: { codec: "mp3", container: "mp3", contentType: "audio/mpeg", lossless: false },
  opus: { codec: "opus", container: "ogg", contentType: "audio/ogg; codecs=opus", lossless: false },
  aac: { codec: "aac", container: "aac", contentType: "audio/aac", lossless: false },
  flac: { codec: "flac", container: "flac", contentType: "audio/flac", lossless: true },
} as const;
type OpenAiFormat = keyof typeof FORMATS;

describe("the openai SDK gets each response_format", () => {
  // Default rate (pcm: OpenAI's 24 kHz; others: the engine's 22050 Hz), then 16 and 48 kHz.
  // MP3 (lamejs, the slowest encoder here) at its default rate only: the resampler before it is
  // the one every format shares.
  const cases = (Object.keys(FORMATS) as OpenAiFormat[]).flatMap((format) =>
    (format === "mp3" ? [0] : [0, 16000, 48000]).map((rate) => [format, rate] as const),
  );
  it.each(cases)("%s at %d Hz (0: the default)", async (format, askedRate) => {
    const response = await sdk().audio.speech.create({
      model: "tts-1",
      voice: "alloy",
      input: textOf(format),
      response_format: format,
      ...(askedRate ? ({ sample_rate_hz: askedRate } as object) : {}),
    });
    const expected = FORMATS[format];
    expect(response.headers.get("content-type")?.startsWith(expected.contentType)).toBe(true);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const rate = askedRate || (format === "pcm" ? 24000 : ENGINE_RATE_HZ);
    const decoded = await probeAndDecode(
      bytes,
      format === "pcm" ? { inputFormat: "s16le", rawRateHz: rate, rawChannels: 1 } : {},
    );
    expect(decoded.codec).toBe(expected.codec);
    expect(decoded.container).toContain(expected.container);
    if (format === "opus") {
      // Opus always decodes at 48 kHz; the header names the rate that was encoded (22050 Hz
      // audio is converted to Opus's next rate, 24 kHz).
      expect(opusHeadInputRate(bytes)).toBe(askedRate || 24000);
      expectSine(decoded, 48000, false);
    } else {
      // MP3 carries no info tag yet, so LAME's delay and last-frame padding play: up to three
      // frames (1152 samples each at 32 kHz and up, 576 below).
      const mp3Extra = format === "mp3" ? (3 * (rate >= 32000 ? 1152 : 576) * 1000) / rate : 0;
      expectSine(decoded, rate, expected.lossless, secondsOf(format), mp3Extra);
    }
  });
});

describe("streaming formats leave the gateway before synthesis ends", () => {
  it.each([
    ["WAV", AudioEncoding.WAV],
    ["MP3", AudioEncoding.MP3],
    ["OPUS", AudioEncoding.OPUS],
    ["FLAC", AudioEncoding.FLAC],
    ["AAC", AudioEncoding.AAC],
  ] as const)(
    "%s: the bytes received while the engine is held decode to most of the audio",
    async (name, encoding) => {
      const seconds = secondsOf(name);
      const release = engine.holdLastChunk();
      const chunks: Uint8Array[] = [];
      const reading = (async () => {
        for await (const chunk of client("connect").tts.streamSynthesize({
          text: textOf(name),
          encoding,
          sampleRateHz: 24000,
        })) {
          chunks.push(chunk.data);
        }
      })();
      reading.catch(() => {});
      // While the engine waits before its last 0.1 s, whatever reached the client was sent before
      // synthesis ended: look at it each time it grew, until it decodes to half the audio. Only if
      // streaming were broken would that never happen: the engine is then let go after 60 s and
      // the assertion fails (no clock decides a pass).
      let beforeRelease: DecodedAudio | undefined;
      let lookedAt = 0;
      const giveUpAt = performance.now() + 60_000;
      try {
        while (!beforeRelease && performance.now() < giveUpAt) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          const received = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
          // Few decodes (each spawns ffprobe and ffmpeg): only once a quarter more has arrived.
          if (engine.held === 0 || received <= lookedAt * 1.25) continue;
          lookedAt = received;
          const partial = await probeAndDecode(join(chunks)).catch(() => undefined);
          if (partial && partial.durationMs >= (seconds * 1000) / 2) beforeRelease = partial;
        }
      } finally {
        release();
      }
      await reading;
      expect(beforeRelease?.durationMs).toBeGreaterThanOrEqual((seconds * 1000) / 2);
      const whole = await probeAndDecode(join(chunks));
      expect(whole.durationMs).toBeGreaterThanOrEqual(seconds * 990);
    },
    90_000,
  );
});
