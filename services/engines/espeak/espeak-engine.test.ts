import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EngineUnavailableError,
  isEngineOverloadedError,
  isEngineUnavailableError,
  isUnknownVoiceError,
  type UnknownVoiceError,
} from "../engine-errors.js";
import type { EngineSynthesisRequest, TtsEngine } from "../tts-engine.js";
import { createEspeakEngine } from "./espeak-engine.js";

const TEN_SENTENCES = Array.from(
  { length: 10 },
  (_, i) => `This is sentence number ${i + 1} of the streaming test.`,
).join(" ");

function request(
  text: string,
  overrides: Partial<EngineSynthesisRequest> = {},
): EngineSynthesisRequest {
  return { text, voiceId: "en-us", speed: 1, instructions: "", ...overrides };
}

async function collect(
  engine: TtsEngine,
  req: EngineSynthesisRequest,
  signal = new AbortController().signal,
): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of engine.synthesize(req, signal)) {
    chunks.push(chunk.pcm);
  }
  return chunks;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

const totalBytes = (chunks: Uint8Array[]): number => chunks.reduce((n, c) => n + c.length, 0);

describe("createEspeakEngine", () => {
  let engine: TtsEngine;
  let bytesPerSecond: number;

  beforeAll(async () => {
    engine = await createEspeakEngine();
    bytesPerSecond = engine.info.format.sampleRateHz * engine.info.format.channels * 2;
  });

  afterAll(async () => {
    await engine?.close();
  });

  it("describes itself with the format and voices espeak-ng reports", () => {
    expect(engine.info).toMatchObject({
      id: "espeak-ng",
      modelFamily: "espeak-ng",
      modelSize: "",
      format: { sampleRateHz: 22050, channels: 1 },
      supportsSpeed: true,
    });
    expect(engine.info.version).toMatch(/^\d+\.\d+/);
    expect(engine.info.voices.length).toBeGreaterThan(100);
    expect(engine.info.voices).toContainEqual({
      id: "en-us",
      name: "English (America)",
      languages: ["en-us", "en"],
      gender: "male",
    });
  });

  it("speaks a short text as more than half a second of 16-bit PCM", async () => {
    const chunks = await collect(engine, request("Hello from voxgate"));
    expect(chunks.length).toBe(1);
    for (const chunk of chunks) {
      expect(chunk.length % (2 * engine.info.format.channels)).toBe(0);
    }
    expect(totalBytes(chunks) / bytesPerSecond).toBeGreaterThan(0.5);
    // Not silence: some samples are loud.
    const samples = new Int16Array(chunks[0]?.slice().buffer ?? new ArrayBuffer(0));
    expect(Math.max(...samples.map(Math.abs))).toBeGreaterThan(1000);
  });

  it("streams sentence by sentence, the first chunk well before the last", async () => {
    const started = performance.now();
    const arrivals: number[] = [];
    for await (const chunk of engine.synthesize(
      request(TEN_SENTENCES),
      new AbortController().signal,
    )) {
      expect(chunk.pcm.length).toBeGreaterThan(bytesPerSecond);
      arrivals.push(performance.now() - started);
    }
    const finished = performance.now() - started;
    expect(arrivals.length).toBeGreaterThanOrEqual(10);
    const first = arrivals[0] ?? Number.POSITIVE_INFINITY;
    // Ten sentences take ten syntheses; the first needs one (plus the next queued behind it).
    expect(first).toBeLessThan(finished / 2);
    console.info(
      `espeak-ng: first chunk after ${first.toFixed(1)} ms, ${arrivals.length} chunks in ${finished.toFixed(1)} ms`,
    );
  });

  it("stops after the first chunk when the signal aborts, throwing the reason", async () => {
    const controller = new AbortController();
    const reason = new Error("caller went away");
    const chunks: Uint8Array[] = [];
    const err = await rejection(
      (async () => {
        for await (const chunk of engine.synthesize(request(TEN_SENTENCES), controller.signal)) {
          chunks.push(chunk.pcm);
          controller.abort(reason);
        }
      })(),
    );
    expect(err).toBe(reason);
    expect(chunks.length).toBe(1);
    // The engine is still usable and its queue is empty.
    expect((await collect(engine, request("Still here."))).length).toBe(1);
  });

  it("throws the reason of a signal aborted before the call", async () => {
    const controller = new AbortController();
    controller.abort("deadline");
    const chunks: Uint8Array[] = [];
    const err = await rejection(
      (async () => {
        for await (const chunk of engine.synthesize(request("Hello."), controller.signal)) {
          chunks.push(chunk.pcm);
        }
      })(),
    );
    expect(err).toBe("deadline");
    expect(chunks).toEqual([]);
  });

  it("rejects an unknown voice, suggesting ids of the same language", async () => {
    const err = await rejection(collect(engine, request("Hello.", { voiceId: "en-zz" })));
    expect(isUnknownVoiceError(err)).toBe(true);
    const unknown = err as UnknownVoiceError;
    expect(unknown.voiceId).toBe("en-zz");
    expect(unknown.suggestedVoiceIds).toContain("en-us");
    expect(unknown.suggestedVoiceIds.length).toBeLessThanOrEqual(8);
    expect(unknown.message).toContain("en-us");
  });

  it("times the words when asked: in order, every word, within each sentence's audio", async () => {
    const text = "Good morning, Dave. The pod bay doors stay closed.";
    let audioBytes = 0;
    const timed: { word: string; startMs: number; endMs: number; textOffset: number }[] = [];
    for await (const chunk of engine.synthesize(
      request(text, { wordTimings: true }),
      new AbortController().signal,
    )) {
      audioBytes += chunk.pcm.byteLength;
      // A chunk's words end within the audio sent so far.
      for (const w of chunk.words ?? []) {
        expect(w.endMs).toBeLessThanOrEqual(Math.ceil((audioBytes / bytesPerSecond) * 1000));
        timed.push(w);
      }
    }
    expect(timed.map((w) => w.word)).toEqual([
      "Good",
      "morning",
      "Dave",
      "The",
      "pod",
      "bay",
      "doors",
      "stay",
      "closed",
    ]);
    for (const [i, w] of timed.entries()) {
      expect(text.slice(w.textOffset, w.textOffset + w.word.length)).toBe(w.word);
      expect(w.endMs).toBeGreaterThan(w.startMs);
      if (i > 0) expect(w.startMs).toBeGreaterThanOrEqual(timed[i - 1]?.endMs ?? 0);
    }
    // Without the flag: no timings, and the same audio.
    const plain = await collect(engine, request(text));
    expect(totalBytes(plain)).toBe(audioBytes);
  });

  it("speaks a listed voice with a variant (en-us+f3), refusing unknown variants", async () => {
    const plain = Buffer.concat(await collect(engine, request("Hello.")));
    const female = Buffer.concat(await collect(engine, request("Hello.", { voiceId: "en-us+f3" })));
    expect(female.length).toBeGreaterThan(0);
    expect(female.equals(plain)).toBe(false);
    for (const voiceId of ["en-us+zz", "en-us+", "+f3", "en-zz+f3"]) {
      const err = await rejection(collect(engine, request("Hello.", { voiceId })));
      expect(isUnknownVoiceError(err)).toBe(true);
    }
  });

  it("uses the default voice for an empty voice id and matches ids case-insensitively", async () => {
    const explicit = Buffer.concat(await collect(engine, request("Hello.")));
    const byDefault = Buffer.concat(await collect(engine, request("Hello.", { voiceId: "" })));
    const upper = Buffer.concat(await collect(engine, request("Hello.", { voiceId: "EN-US" })));
    expect(byDefault.equals(explicit)).toBe(true);
    expect(upper.equals(explicit)).toBe(true);
  });

  it("gives identical audio for identical requests, whatever ran before", async () => {
    const first = Buffer.concat(await collect(engine, request("Good morning, Dave.")));
    await collect(engine, request("Guten Tag, wie geht es Ihnen?", { voiceId: "de", speed: 1.7 }));
    const second = Buffer.concat(await collect(engine, request("Good morning, Dave.")));
    expect(second.length).toBeGreaterThan(0);
    expect(second.equals(first)).toBe(true);
  });

  it("changes the rate of speech with speed", async () => {
    const text = "The quick brown fox jumps over the lazy dog";
    const normal = totalBytes(await collect(engine, request(text)));
    const fast = totalBytes(await collect(engine, request(text, { speed: 2 })));
    const slow = totalBytes(await collect(engine, request(text, { speed: 0.5 })));
    expect(fast).toBeLessThan(normal * 0.7);
    expect(slow).toBeGreaterThan(normal * 1.4);
  });

  it("speaks text that looks like command-line options", async () => {
    const chunks = await collect(engine, request("--help -v fr -w /etc/passwd"));
    expect(totalBytes(chunks) / bytesPerSecond).toBeGreaterThan(1);
  });

  it("yields nothing for whitespace-only text", async () => {
    expect(await collect(engine, request(" \n\t "))).toEqual([]);
  });

  it("serves concurrent calls", async () => {
    const [a, b] = await Promise.all([
      collect(engine, request("One. Two. Three.")),
      collect(engine, request("Four. Five.", { voiceId: "de" })),
    ]);
    expect(a?.length).toBe(3);
    expect(b?.length).toBe(2);
  });
});

describe("createEspeakEngine failures", () => {
  it("rejects with EngineUnavailableError when the package is missing", async () => {
    const err = await rejection(createEspeakEngine({ packageName: "espeak-ng-not-installed" }));
    expect(isEngineUnavailableError(err)).toBe(true);
    expect((err as Error).message).toContain("npm install espeak-ng");
  });

  it.each([{ workers: 0 }, { maxQueue: 1.5 }, { startTimeoutMs: -1 }])(
    "rejects invalid options %j",
    async (options) => {
      expect(await rejection(createEspeakEngine(options))).toBeInstanceOf(RangeError);
    },
  );

  it("refuses calls beyond maxQueue, rejects in-flight calls on close, and closes idempotently", async () => {
    const engine = await createEspeakEngine({ maxQueue: 1 });
    const running = engine.synthesize(request(TEN_SENTENCES), new AbortController().signal);
    const iterator = running[Symbol.asyncIterator]();
    // Its first sentence is in the worker and the second waits in the queue: the queue is full.
    const first = iterator.next();
    const refused = await rejection(collect(engine, request("Another call.")));
    expect(isEngineOverloadedError(refused)).toBe(true);
    expect((await first).done).toBe(false);

    const closing = engine.close();
    expect(engine.close()).toBe(closing);
    const inFlight = await rejection(iterator.next());
    expect(inFlight).toBeInstanceOf(EngineUnavailableError);
    await closing;
    await engine.close();
    const after = await rejection(collect(engine, request("Hello.")));
    expect(isEngineUnavailableError(after)).toBe(true);
  });
});
