import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { Feature } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { SynthesizeSpeechRequest, TtsService } from "../../gen/voxgate/v1/tts_pb.js";
import { kRequestIdHeader } from "../agent-link/agent-transport.js";
import { kCallContext } from "../gateway/call-context.js";
import { type BackendRegistry, type CallOutcome, isBackendFault } from "../registry/index.js";
import { type AudioContainer, chooseContainer } from "./audio-container.js";
import { type SynthesisLimits, toBackendRequest } from "./synthesis-request.js";

/** Response header naming the backend that served a call. */
export const kBackendHeader = "x-voxgate-backend";
/** Response header with the number of backends tried. */
export const kAttemptsHeader = "x-voxgate-attempts";

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
}

type SpeechPiece =
  | { kind: "start"; container: AudioContainer }
  | { kind: "audio"; pcm: Uint8Array };

/** Creates the TtsService implementation. */
export function createTtsHandler(options: TtsHandlerOptions): ServiceImpl<typeof TtsService> {
  const { registry, limits, defaultTimeoutMs } = options;

  /** Runs one synthesis on a backend: first the container, then PCM as the backend sends it. */
  async function* speak(
    request: SynthesizeSpeechRequest,
    context: HandlerContext,
  ): AsyncGenerator<SpeechPiece> {
    const backendRequest = toBackendRequest(request, limits);
    const lease = registry.lease({
      feature: Feature.SYNTHESIZE,
      engine: request.engine,
      modelFamily: request.model,
    });
    context.responseHeader.set(kBackendHeader, lease.backend.id);
    context.responseHeader.set(kAttemptsHeader, "1");
    const requestId = context.values.get(kCallContext)?.requestId ?? "";
    let outcome: CallOutcome = "backend-failure";
    let failure: string | undefined;
    try {
      const pieces = lease.backend.client.synthesize(backendRequest, {
        signal: context.signal,
        timeoutMs: context.timeoutMs() ?? defaultTimeoutMs,
        headers: { [kRequestIdHeader]: requestId },
      });
      let container: AudioContainer | undefined;
      for await (const piece of pieces) {
        switch (piece.kind.case) {
          case "format": {
            const format = piece.kind.value;
            if (request.sampleRateHz !== 0 && request.sampleRateHz !== format.sampleRateHz) {
              throw new ConnectError(
                `sample_rate_hz ${request.sampleRateHz} needs resampling, which is not available yet; ` +
                  `backend ${lease.backend.id} speaks at ${format.sampleRateHz} Hz`,
                Code.Unimplemented,
              );
            }
            container = chooseContainer(request.encoding, format);
            yield { kind: "start", container };
            break;
          }
          case "audio":
            if (!container) {
              throw new ConnectError("backend sent audio before its format", Code.Internal);
            }
            yield { kind: "audio", pcm: piece.kind.value };
            break;
          default:
            break;
        }
      }
      if (!container) throw new ConnectError("backend ended without sending audio", Code.Internal);
      outcome = "ok";
    } catch (err) {
      const error = ConnectError.from(err);
      failure = error.rawMessage;
      outcome = context.signal.aborted
        ? "caller-gone"
        : isBackendFault(error.code)
          ? "backend-failure"
          : "ok";
      throw error;
    } finally {
      // Also reached when the caller stops reading: the generator is returned early.
      if (context.signal.aborted && outcome !== "ok") outcome = "caller-gone";
      lease.release(outcome, failure);
    }
  }

  return {
    async *streamSynthesize(request, context) {
      let container: AudioContainer | undefined;
      for await (const piece of speak(request, context)) {
        if (piece.kind === "start") {
          container = piece.container;
          continue;
        }
        if (!container) continue;
        if (container.streamPrefix.byteLength > 0 || container.contentType) {
          // The first chunk carries the content type and the container header with real audio.
          yield {
            contentType: container.contentType,
            data: concat(container.streamPrefix, piece.pcm),
          };
          container = { ...container, streamPrefix: new Uint8Array(0), contentType: "" };
        } else {
          yield { data: piece.pcm };
        }
      }
      if (container?.contentType) {
        // No audio at all: still answer with a well-formed (empty) stream.
        yield { contentType: container.contentType, data: container.streamPrefix };
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
        data: concat(container.clipPrefix(total), ...chunks),
      };
    },
  };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  return Buffer.concat(parts);
}
