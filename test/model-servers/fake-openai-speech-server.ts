/**
 * A fake but real OpenAI-compatible speech server on 127.0.0.1: `POST /v1/audio/speech` answers
 * a tone whose pitch depends on the voice (raw 24 kHz PCM or a streaming WAV), sent in pieces;
 * `GET /v1/audio/voices` lists its voices when asked to. It checks the bearer key, records every
 * request and how its connection ended, and has knobs for failures, holds and redirects.
 */
import { encodeWavHeader } from "../../services/audio/wav.js";
import {
  type PieceOptions,
  type RecordedRequest,
  sendJson,
  sendPieces,
  serveFake,
} from "./fake-server-support.js";
import { speechPcm } from "./tone.js";

/** Knobs of the fake; change them any time. */
export interface FakeOpenAiKnobs extends PieceOptions {
  /** Voices; `GET /v1/audio/voices` answers 404 when this is undefined. */
  voices: string[] | undefined;
  /** The next answers of the speech endpoint are these errors, in order. */
  failNext: Array<{ status: number; body: unknown }>;
  /** Redirect the speech endpoint to this URL (307). */
  redirectTo: string | undefined;
  /** Answer `wav` requests with this sample rate in the header (a misconfigured server). */
  wavSampleRateHz: number | undefined;
}

/** Options of {@link startFakeOpenAiSpeechServer}. */
export interface FakeOpenAiOptions {
  /** Required bearer key; none when undefined. */
  apiKey?: string;
  /** Sample rate of the audio, in Hz. @default 24000 */
  sampleRateHz?: number;
  /** Initial knobs. */
  knobs?: Partial<FakeOpenAiKnobs>;
}

/** A running fake. */
export interface FakeOpenAiSpeechServer {
  /** Base URL, e.g. `http://127.0.0.1:12345`. */
  readonly url: string;
  /** Every request so far. */
  readonly requests: RecordedRequest[];
  /** Knobs. */
  readonly knobs: FakeOpenAiKnobs;
  /** The PCM this server speaks for `text` with `voice`. */
  expectedPcm(text: string, voice: string): Uint8Array;
  /** Requests to the speech endpoint. */
  speechRequests(): RecordedRequest[];
  /** Stops the server, cutting open connections. */
  close(): Promise<void>;
}

/** Starts the fake on 127.0.0.1 and a free port. */
export async function startFakeOpenAiSpeechServer(
  options: FakeOpenAiOptions = {},
): Promise<FakeOpenAiSpeechServer> {
  const sampleRateHz = options.sampleRateHz ?? 24_000;
  const knobs: FakeOpenAiKnobs = {
    voices: ["alloy", "nova", "onyx"],
    failNext: [],
    redirectTo: undefined,
    wavSampleRateHz: undefined,
    pieceBytes: 4800,
    pieceDelayMs: 0,
    gate: undefined,
    ...options.knobs,
  };
  const requests: RecordedRequest[] = [];

  const fake = await serveFake(requests, async (req, res, entry) => {
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      sendJson(res, entry, 401, {
        error: { message: "Incorrect API key provided", type: "invalid_request_error" },
      });
      return;
    }
    if (req.method === "GET" && req.url === "/v1/audio/voices") {
      if (!knobs.voices) {
        sendJson(res, entry, 404, { detail: "Not Found" });
        return;
      }
      sendJson(res, entry, 200, { voices: knobs.voices });
      return;
    }
    if (req.method !== "POST" || req.url !== "/v1/audio/speech") {
      sendJson(res, entry, 404, { detail: "Not Found" });
      return;
    }
    if (knobs.redirectTo) {
      entry.status = 307;
      res.writeHead(307, { location: knobs.redirectTo }).end();
      return;
    }
    const failure = knobs.failNext.shift();
    if (failure) {
      sendJson(res, entry, failure.status, failure.body);
      return;
    }
    const body = entry.body as Record<string, unknown>;
    const voice = String(body.voice ?? "");
    if (!knobs.voices?.includes(voice) && !(knobs.voices === undefined && voice)) {
      sendJson(res, entry, 400, {
        error: { message: `Voice '${voice}' not found`, type: "invalid_request_error" },
      });
      return;
    }
    const pcm = speechPcm(String(body.input ?? ""), voice, sampleRateHz);
    if (body.response_format === "wav") {
      const header = encodeWavHeader({
        sampleRateHz: knobs.wavSampleRateHz ?? sampleRateHz,
        channels: 1,
      });
      await sendPieces(res, entry, "audio/wav", Buffer.concat([header, pcm]), knobs);
      return;
    }
    await sendPieces(res, entry, "audio/pcm", pcm, knobs);
  });

  return {
    url: fake.url,
    requests,
    knobs,
    expectedPcm: (text, voice) => speechPcm(text, voice, sampleRateHz),
    speechRequests: () => requests.filter((r) => r.path === "/v1/audio/speech"),
    close: fake.close,
  };
}
