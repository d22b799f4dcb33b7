/**
 * The OpenAI fit end to end, with the official `openai` SDK against real processes: a gateway
 * configured through its environment (model aliases, voice aliases, the open voice list) and two
 * agents with different engines — espeak-ng and the synthetic echo engine — so a model alias can
 * be seen to route (`x-voxgate-backend` names the agent that served).
 *
 * The issue asks: aliases route as configured (tts-1 to one agent, tts-1-hd to the other), voice
 * aliases give different audio, the voice list answers without a token when enabled (Open WebUI's
 * request: a bare GET, `voices: [{ id, name }]`) and 401 when not (the default: see
 * openai-sdk.test.ts, "answers without a token 401"). Word timings (espeak-ng) cross the agent
 * link and come out as SSE events and as Connect/gRPC `extensions`: in order, covering the text's
 * words, each on sound in the audio, within its duration. Texts are one or two short sentences
 * each; the whole file runs in ~10 s on a quiet machine (three process starts dominate).
 */
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVoxgateClient } from "../../clients/voxgate-client.js";
import { AudioEncoding, WordTimingsSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { parseWav, wavDurationMs } from "../../services/audio/wav.js";
import { DEFAULT_VOICE_ALIASES } from "../../services/openai/index.js";
import {
  type GatewayProcess,
  startAgentProcess,
  startGatewayProcess,
} from "../helpers/voxgate-stack.js";

const TEXT = "Captions make speech easy to follow.";

describe("OpenAI fit on real gateway and agent processes", () => {
  let gateway: GatewayProcess;
  const agents: ReturnType<typeof startAgentProcess>[] = [];

  const sdk = () =>
    new OpenAI({
      baseURL: `${gateway.url}/v1`,
      apiKey: gateway.clientToken,
      maxRetries: 0,
      timeout: 60_000,
    });
  const speak = async (model: string, voice: string) => {
    const response = await sdk().audio.speech.create({
      model,
      voice,
      input: TEXT,
      response_format: "wav",
    });
    return {
      backend: response.headers.get("x-voxgate-backend"),
      bytes: new Uint8Array(await response.arrayBuffer()),
    };
  };

  beforeAll(async () => {
    const env = {
      VOXGATE_OPENAI_MODEL_ALIASES_JSON: JSON.stringify({
        "tts-1": { engine: "espeak-ng" },
        "tts-1-hd": { engine: "echo" },
      }),
      // One configured name next to the built-in table.
      VOXGATE_OPENAI_VOICE_ALIASES_JSON: JSON.stringify({ narrator: { "espeak-ng": "en-us+m2" } }),
    };
    gateway = await startGatewayProcess({
      env: { ...env, VOXGATE_OPENAI_PUBLIC_VOICE_LIST: "true" },
      readyTimeoutMs: 90_000,
    });
    // Generous waits: three processes start at once on a machine that may be busy.
    agents.push(
      startAgentProcess(gateway, "espeak-box", { VOXGATE_AGENT_ENGINE: "espeak" }, 90_000),
      startAgentProcess(gateway, "echo-box", { VOXGATE_AGENT_ENGINE: "echo" }, 90_000),
    );
    await Promise.all(agents.map((a) => a.connected));
  }, 200_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.proc.stop()));
    await gateway?.proc.stop();
  });

  it("routes tts-1 and tts-1-hd to the engines their aliases name", async () => {
    for (let i = 0; i < 3; i++) {
      expect((await speak("tts-1", "alloy")).backend).toBe("espeak-box");
      expect((await speak("tts-1-hd", "alloy")).backend).toBe("echo-box");
    }
    // The aliases are listed where clients look for models.
    const models = await (
      await fetch(`${gateway.url}/v1/audio/models`, {
        headers: { authorization: `Bearer ${gateway.clientToken}` },
      })
    ).json();
    const ids = (models as { models: { id: string }[] }).models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["tts-1", "tts-1-hd", "espeak-ng", "echo"]));
  });

  it("speaks each OpenAI voice name with its own espeak-ng voice", async () => {
    const names = [...Object.keys(DEFAULT_VOICE_ALIASES), "narrator"];
    const lengths = new Map<string, number>();
    for (const name of names) {
      const { backend, bytes } = await speak("tts-1", name);
      expect(backend).toBe("espeak-box");
      // Real speech each time (1-6 s for this sentence), not an error body or silence.
      const ms = wavDurationMs(parseWav(bytes));
      expect(ms).toBeGreaterThan(1000);
      expect(ms).toBeLessThan(6000);
      lengths.set(name, bytes.byteLength);
    }
    // Each voice speaks the sentence at its own length. (Lengths, not bytes: espeak-ng's female
    // variants add breath noise seeded per engine worker, so bytes differ between workers.)
    expect(new Set(lengths.values()).size).toBe(names.length);
    // The same name again gets the same voice: the difference above is the alias, not chance.
    const again = await speak("tts-1", "nova");
    expect(again.bytes.byteLength).toBe(lengths.get("nova"));
    // An alias resolves from the table: no voice lookup, so no NOT_FOUND in the gateway's log.
    expect(
      gateway.proc.logs.filter((l) => l.code === "NotFound" || l.code === "not_found"),
    ).toEqual([]);
  });

  it("answers stream: false with one whole file and its Content-Length", async () => {
    const response = await fetch(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        model: "tts-1",
        voice: "fable",
        input: TEXT,
        stream: false,
        download_format: "wav",
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("audio/wav");
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect(Number(response.headers.get("content-length"))).toBe(bytes.byteLength);
    // Exact RIFF sizes (not the streaming "unknown length" header).
    const wav = parseWav(bytes);
    expect(wav.dataOffset + wav.dataBytes).toBe(bytes.byteLength);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(bytes.byteLength - 8);
  });

  it("lists voices for Open WebUI's bare GET when enabled, presets and aliases only", async () => {
    // Open WebUI: requests.get(f"{base}/audio/voices") with no headers, then voices[*].id/.name.
    const open = await fetch(`${gateway.url}/v1/audio/voices`);
    expect(open.status).toBe(200);
    const body = (await open.json()) as { voices: { id: string; name: string; type: string }[] };
    const ids = body.voices.map((v) => v.id);
    expect(ids.slice(0, 3)).toEqual(["alloy", "ash", "ballad"]);
    expect(ids).toEqual(expect.arrayContaining(["narrator", "en-us", "en-gb"]));
    expect(body.voices.every((v) => v.name !== "" && v.type !== "cloned")).toBe(true);
    // Its model list too (Open WebUI reads `models`).
    const models = await fetch(`${gateway.url}/v1/audio/models`);
    expect(models.status).toBe(200);
    // Speech still needs a token.
    const speech = await fetch(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: TEXT }),
    });
    expect(speech.status).toBe(401);
    // A wrong token is still refused: only a request without one is let in.
    const wrong = await fetch(`${gateway.url}/v1/audio/voices`, {
      headers: { authorization: "Bearer vxg_wrong" },
    });
    expect(wrong.status).toBe(401);
  });

  /** Two sentences, a comma pause, a long word and short ones. */
  const CAPTIONED =
    "Captions help everyone, even in noisy rooms. Extraordinarily long words take a while.";
  const CAPTION_WORDS = CAPTIONED.split(" ").map((w) => w.replace(/[^A-Za-z]/g, ""));
  interface Timed {
    word: string;
    startMs: number;
    endMs: number;
    textOffset: number;
  }

  /** What every stream of word timings must satisfy against its audio (16-bit mono PCM). */
  const checkTimings = (words: Timed[], pcm: Int16Array, sampleRateHz: number) => {
    const audioMs = (pcm.length / sampleRateHz) * 1000;
    // Every word of the text, once, in order, each pointing at itself in the text.
    expect(words.map((w) => w.word)).toEqual(CAPTION_WORDS);
    for (const w of words)
      expect(CAPTIONED.slice(w.textOffset, w.textOffset + w.word.length)).toBe(w.word);
    let previousEnd = 0;
    for (const w of words) {
      expect(w.startMs).toBeGreaterThanOrEqual(previousEnd);
      expect(w.endMs).toBeGreaterThan(w.startMs);
      previousEnd = w.endMs;
      // The span holds sound: the word is where its audio is, not in a pause.
      const from = Math.floor((w.startMs / 1000) * sampleRateHz);
      const to = Math.ceil((w.endMs / 1000) * sampleRateHz);
      let peak = 0;
      for (let i = from; i < to && i < pcm.length; i++)
        peak = Math.max(peak, Math.abs(pcm[i] as number));
      expect(peak, `${w.word} ${w.startMs}-${w.endMs} ms`).toBeGreaterThan(2000);
    }
    expect(previousEnd).toBeLessThanOrEqual(Math.ceil(audioMs));
    const ms = (word: string) => {
      const w = words.find((x) => x.word === word) as Timed;
      return w.endMs - w.startMs;
    };
    // Lengths come from the speech: the long word takes longer than short ones.
    expect(ms("Extraordinarily")).toBeGreaterThan(2 * ms("a"));
    expect(ms("Extraordinarily")).toBeGreaterThan(ms("in"));
    // The comma's pause lies between "everyone" and "even"; the sentence break after "rooms".
    const at = (word: string) => words.findIndex((x) => x.word === word);
    const gap = (word: string) =>
      (words[at(word) + 1] as Timed).startMs - (words[at(word)] as Timed).endMs;
    expect(gap("everyone")).toBeGreaterThan(60);
    expect(gap("rooms")).toBeGreaterThan(gap("help"));
  };

  it("sends word timings as SSE speech.word events beside the audio", async () => {
    const response = await fetch(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        model: "tts-1",
        voice: "alloy",
        input: CAPTIONED,
        response_format: "pcm",
        stream_format: "sse",
        word_timings: true,
      }),
    });
    expect(response.status).toBe(200);
    const rate = Number(response.headers.get("x-voxgate-sample-rate"));
    const events = (await response.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
    const audio = Buffer.concat(
      events
        .filter((e) => e.type === "speech.audio.delta")
        .map((e) => Buffer.from(String(e.audio), "base64")),
    );
    const words = events
      .filter((e) => e.type === "speech.word")
      .map((e) => ({
        word: String(e.word),
        startMs: Number(e.start_ms),
        endMs: Number(e.end_ms),
        textOffset: Number(e.text_offset),
      }));
    expect(events.at(-1)?.type).toBe("speech.audio.done");
    // Each word's event comes after audio at least up to its end has been sent.
    let sentMs = 0;
    for (const e of events) {
      if (e.type === "speech.audio.delta") {
        sentMs += (Buffer.from(String(e.audio), "base64").byteLength / 2 / rate) * 1000;
      } else if (e.type === "speech.word") {
        expect(Number(e.end_ms)).toBeLessThanOrEqual(Math.ceil(sentMs));
      }
    }
    checkTimings(words, new Int16Array(audio.buffer, audio.byteOffset, audio.byteLength / 2), rate);
  });

  it("carries word timings over Connect in the stream's extensions, and only when asked", async () => {
    const client = createVoxgateClient({ baseUrl: gateway.url, token: gateway.clientToken });
    try {
      const collect = async (wordTimings: boolean) => {
        const parts: Uint8Array[] = [];
        const words: Timed[] = [];
        let contentType = "";
        for await (const chunk of client.tts.streamSynthesize({
          text: CAPTIONED,
          engine: "espeak-ng",
          encoding: AudioEncoding.PCM,
          wordTimings,
        })) {
          contentType ||= chunk.contentType;
          parts.push(chunk.data);
          for (const extension of chunk.extensions) {
            for (const w of anyUnpack(extension, WordTimingsSchema)?.words ?? []) {
              words.push({
                word: w.word,
                startMs: Number(w.startMs),
                endMs: Number(w.endMs),
                textOffset: w.textOffset,
              });
            }
          }
        }
        const audio = Buffer.concat(parts);
        const rate = Number(/rate=(\d+)/.exec(contentType)?.[1]);
        return { audio, words, rate };
      };
      const timed = await collect(true);
      checkTimings(
        timed.words,
        new Int16Array(timed.audio.buffer, timed.audio.byteOffset, timed.audio.byteLength / 2),
        timed.rate,
      );
      const plain = await collect(false);
      expect(plain.words).toEqual([]);
      // Asking for timings leaves the audio as it is.
      expect(plain.audio.equals(timed.audio)).toBe(true);
    } finally {
      client.close();
    }
  });

  it("refuses word_timings without SSE, naming the field", async () => {
    const response = await fetch(`${gateway.url}/v1/audio/speech`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${gateway.clientToken}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ model: "tts-1", input: CAPTIONED, word_timings: true }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { param: string } }).error.param).toBe(
      "word_timings",
    );
  });
});
