import { anyPack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type WordTimings, WordTimingsSchema } from "../../gen/voxgate/v1/audio_pb.js";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { SynthesizeSpeechRequest, TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { kRequestIdHeader } from "../agent-link/agent-transport.js";
import { loadResamplerFactory, type PcmResampler } from "../audio/resampler.js";
import { tenantViewOf } from "../auth/tenant-view.js";
import { kCallContext } from "../gateway/call-context.js";
import type { UsageMeter } from "../limits/usage-meter.js";
import type { BackendCriteria, BackendRegistry } from "../registry/index.js";
import type { ClonePromptResolver } from "../voices/clone-prompt-resolver.js";
import {
  type AudioContainer,
  type AudioContainerOptions,
  chooseContainer,
} from "./audio-container.js";
import { checkBackendFormat, checkWordTimings } from "./backend-format.js";
import {
  checkSynthesisRequest,
  type SynthesisLimits,
  toBackendRequest,
} from "./synthesis-request.js";

/** Response header naming the backend that served a call. */
export const kBackendHeader = "x-voxgate-backend";
/** Response header with the number of backends tried. */
export const kAttemptsHeader = "x-voxgate-attempts";
/** Response header with the time the call waited in the admission queue for a slot, in ms. */
export const kQueueWaitHeader = "x-voxgate-queue-ms";

/** Options of {@link createTtsHandler}. */
export interface TtsHandlerOptions {
  /** Where backends are found. */
  registry: BackendRegistry;
  /** Request limits. */
  limits: SynthesisLimits & {
    /** Largest whole clip Synthesize returns, in bytes. */
    maxClipBytes: number;
  };
  /** Deadline of calls whose client set none, in ms. */
  defaultTimeoutMs: number;
  /** Per-token character limits; the caller's characters are counted before any backend is asked. */
  meter?: Pick<UsageMeter, "chargeChars">;
  /** Encoder settings (MP3 bit rate). @default the encoders' own defaults */
  audio?: AudioContainerOptions;
  /**
   * Finds the clone prompt of a cloned voice id or `prompt_id`. Without it, cloned voice ids are
   * passed on as preset ids and `prompt_id` answers UNIMPLEMENTED.
   */
  resolveClonePrompt?: ClonePromptResolver;
}

type SpeechPiece =
  | { kind: "start"; container: AudioContainer }
  | { kind: "audio"; pcm: Uint8Array }
  | { kind: "words"; words: WordTimings };

/** Creates the TtsService implementation. */
export function createTtsHandler(options: TtsHandlerOptions): ServiceImpl<typeof TtsService> {
  const { registry, limits, defaultTimeoutMs } = options;

  /**
   * Runs one synthesis through the registry's retry loop: first the container, then PCM as the
   * backend sends it. The container is held back until the first audio, so a backend that fails
   * before any audio is replaced by the next one without the caller seeing anything.
   */
  async function* speak(
    request: SynthesizeSpeechRequest,
    context: HandlerContext,
  ): AsyncGenerator<SpeechPiece> {
    // Limits first (no lookup for a request that is refused anyway), then the clone prompt.
    checkSynthesisRequest(request, limits);
    const callContext = context.values.get(kCallContext);
    const caller = callContext?.principal?.name;
    if (caller) options.meter?.chargeChars(caller, request.text.length);
    const clonePrompt = await options.resolveClonePrompt?.(
      { voice: request.voice, promptId: request.promptId, promptName: request.promptName },
      tenantViewOf(callContext?.principal),
    );
    const backendRequest = toBackendRequest(request, limits, clonePrompt);
    const prompt =
      backendRequest.voice?.kind.case === "clonePrompt"
        ? backendRequest.voice.kind.value
        : undefined;
    const requestId = callContext?.requestId ?? "";
    const criteria: BackendCriteria = prompt
      ? {
          // A clone prompt only works on the model (family and size) that made it.
          feature: Feature.CLONE_PROMPT_SYNTHESIZE,
          engine: request.engine,
          modelFamily: prompt.model?.family ?? "",
          modelSize: prompt.model?.size ?? "",
          exactModel: true,
          // Prefer an agent that already caches the prompt: no bytes to send.
          promptDigest: prompt.digest,
        }
      : {
          // A synthesis mode (params.mode) goes only to backends that declare it.
          feature:
            request.params.mode === "voice_design" ? Feature.VOICE_DESIGN : Feature.SYNTHESIZE,
          engine: request.engine,
          modelFamily: request.model,
        };
    yield* registry.call(
      criteria,
      {
        signal: context.signal,
        timeoutMs: context.timeoutMs() ?? defaultTimeoutMs,
        // Each token waits in its own line; lines take turns (one busy caller cannot starve others).
        queueKey: callContext?.principal?.name ?? "",
        onAdmitted(waitedMs) {
          context.responseHeader.set(kQueueWaitHeader, String(Math.round(waitedMs)));
        },
        onFirstItem(backend, attempts) {
          // Headers leave with the first message, so they can still name the serving backend.
          context.responseHeader.set(kBackendHeader, backend.id);
          context.responseHeader.set(kAttemptsHeader, String(attempts));
        },
      },
      async function* attempt({ backend, signal, timeoutMs }): AsyncGenerator<SpeechPiece> {
        const pieces = backend.client.synthesize(backendRequest, {
          signal,
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          headers: { [kRequestIdHeader]: requestId },
        });
        let container: AudioContainer | undefined;
        let resampler: PcmResampler | undefined;
        let started = false;
        try {
          for await (const piece of pieces) {
            switch (piece.kind.case) {
              case "format": {
                const format = piece.kind.value;
                checkBackendFormat(format, backend.id);
                // The backend's rate, converted on the gateway when the caller asked for another.
                const rate = request.sampleRateHz || format.sampleRateHz;
                resampler?.dispose();
                resampler =
                  rate === format.sampleRateHz
                    ? undefined
                    : (await loadResamplerFactory()).create({
                        fromHz: format.sampleRateHz,
                        toHz: rate,
                        channels: format.channels,
                        ...(options.audio?.resamplerQuality !== undefined
                          ? { quality: options.audio.resamplerQuality }
                          : {}),
                      });
                container = chooseContainer(
                  request.encoding,
                  { ...format, sampleRateHz: rate },
                  options.audio,
                );
                break;
              }
              case "audio": {
                if (!container) {
                  throw new ConnectError("backend sent audio before its format", Code.Internal);
                }
                const pcm = resampler ? resampler.push(piece.kind.value) : piece.kind.value;
                // A short chunk may leave the resampler with no whole output frame yet.
                if (pcm.byteLength === 0) break;
                if (!started) {
                  started = true;
                  yield { kind: "start", container };
                }
                yield { kind: "audio", pcm };
                break;
              }
              case "words":
                // Only after audio: a word is never announced before its sound has left.
                // (The resampler adds no delay, so word times hold at any rate.)
                if (request.wordTimings && started) {
                  checkWordTimings(piece.kind.value, request.text.length, backend.id);
                  yield { kind: "words", words: piece.kind.value };
                }
                break;
              default:
                break;
            }
          }
          if (!container)
            throw new ConnectError("backend ended without sending audio", Code.Internal);
          const tail = resampler?.end();
          if (!started) yield { kind: "start", container };
          if (tail && tail.byteLength > 0) yield { kind: "audio", pcm: tail };
        } finally {
          resampler?.dispose();
        }
      },
    );
  }

  return {
    async *streamSynthesize(request, context) {
      let container: AudioContainer | undefined;
      let encoder: ReturnType<AudioContainer["createStreamEncoder"]> | undefined;
      let sent = false;
      // Word timings wait for the audio's first chunk, which carries the content type.
      const heldWords: WordTimings[] = [];
      const wordsChunk = (words: WordTimings) => ({
        data: new Uint8Array(0),
        extensions: [anyPack(WordTimingsSchema, words)],
      });
      try {
        for await (const piece of speak(request, context)) {
          if (piece.kind === "start") {
            // A new start (failover) comes before any byte left: begin again in its format.
            await encoder?.cancel();
            container = piece.container;
            encoder = container.createStreamEncoder();
            continue;
          }
          if (piece.kind === "words") {
            if (sent) yield wordsChunk(piece.words);
            else heldWords.push(piece.words);
            continue;
          }
          if (!container || !encoder) continue;
          // MP3, Opus, FLAC and AAC hold samples back until a frame is full: one PCM chunk gives
          // zero or more pieces.
          const encoded = encoder.encode(piece.pcm);
          if (Array.isArray(encoded)) {
            for (const data of encoded as readonly Uint8Array[]) {
              // The first chunk carries the content type and the container header with real audio.
              yield sent ? { data } : { contentType: container.contentType, data };
              sent = true;
            }
          } else {
            for await (const data of encoded) {
              yield sent ? { data } : { contentType: container.contentType, data };
              sent = true;
            }
          }
          if (sent) for (const words of heldWords.splice(0)) yield wordsChunk(words);
        }
        if (!container || !encoder) return;
        const tail = await encoder.end();
        if (!sent) {
          // No audio at all: still answer with a well-formed (empty) stream.
          yield { contentType: container.contentType, data: tail };
        } else if (tail.byteLength > 0) {
          yield { data: tail };
        }
      } finally {
        // A caller that went away, or a failed backend, leaves no codec worker behind.
        await encoder?.cancel();
      }
    },

    async synthesize(request, context) {
      let container: AudioContainer | undefined;
      const chunks: Uint8Array[] = [];
      let total = 0;
      for await (const piece of speak(request, context)) {
        if (piece.kind === "start") {
          container = piece.container;
          continue;
        }
        if (piece.kind === "words") continue;
        total += piece.pcm.byteLength;
        if (total > limits.maxClipBytes) {
          throw new ConnectError(
            `the clip exceeds ${limits.maxClipBytes} bytes (max clip bytes: VOXGATE_MAX_CLIP_BYTES); ` +
              "use StreamSynthesize for long audio",
            Code.ResourceExhausted,
          );
        }
        chunks.push(piece.pcm);
      }
      if (!container) throw new ConnectError("backend sent no audio", Code.Internal);
      return {
        contentType: container.contentType,
        data: await container.encodeClip(chunks, total),
      };
    },
  };
}
