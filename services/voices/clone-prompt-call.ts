import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Feature, type ModelRef } from "../../gen/voxgate/v1/capabilities_pb.js";
import type { CreateClonePromptRequestSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { kRequestIdHeader } from "../agent-link/agent-transport.js";
import type { BackendRegistry } from "../registry/index.js";

/** Reference audio chunk size on the way to a backend, in bytes (well under message limits). */
const UPLOAD_CHUNK_BYTES = 256 * 1024;

/** What {@link createClonePrompt} asks a backend for. */
export interface ClonePromptOrder {
  /** Reference recording (type, size and duration already checked). */
  referenceAudio: Uint8Array;
  /** MIME type found by magic bytes. */
  contentType: string;
  /** Transcript, empty when unknown. */
  referenceText: string;
  /** BCP-47 language, empty when unknown. */
  language: string;
  /** Engine id, empty for any backend with clone_prompt_create. */
  engine: string;
  /** Model family and size, empty for any. */
  model: { family: string; size: string };
}

/** A clone prompt as a backend made it. */
export interface MadeClonePrompt {
  /** Backend that made it. */
  backendId: string;
  /** Engine that made it. */
  engine: string;
  /** Model that made it; only it can speak the voice. */
  model: ModelRef | undefined;
  /** MIME type of the prompt bytes. */
  contentType: string;
  /** The prompt. */
  bytes: Uint8Array;
}

/** Options of one {@link createClonePrompt}. */
export interface ClonePromptCallOptions {
  /** Caller's signal. */
  signal: AbortSignal;
  /** Deadline of every attempt together, in ms. */
  timeoutMs: number;
  /** Request id passed to the backend for its logs. */
  requestId: string;
  /** Largest prompt accepted from a backend, in bytes (`VOXGATE_MAX_PROMPT_BYTES`). */
  maxPromptBytes: number;
}

/**
 * Has a backend with FEATURE_CLONE_PROMPT_CREATE (and the engine/model asked for) turn reference
 * audio into a clone prompt: the spec, then the audio in chunks, go up; the description, then the
 * prompt bytes, come back. The registry's failover applies until the whole prompt is in.
 *
 * @throws ConnectError FAILED_PRECONDITION when no backend can clone (registry), RESOURCE_EXHAUSTED
 *   when a backend's prompt exceeds `maxPromptBytes`, INTERNAL for a malformed answer.
 */
export async function createClonePrompt(
  registry: BackendRegistry,
  order: ClonePromptOrder,
  options: ClonePromptCallOptions,
): Promise<MadeClonePrompt> {
  const criteria = {
    feature: Feature.CLONE_PROMPT_CREATE,
    engine: order.engine,
    modelFamily: order.model.family,
    modelSize: order.model.size,
  };
  const results = registry.call(
    criteria,
    { signal: options.signal, timeoutMs: options.timeoutMs },
    async function* attempt({ backend, signal, timeoutMs }) {
      const responses = backend.client.createClonePrompt(upload(order), {
        signal,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        headers: { [kRequestIdHeader]: options.requestId },
      });
      let described:
        | { engine: string; model: ModelRef | undefined; contentType: string }
        | undefined;
      const parts: Uint8Array[] = [];
      let total = 0;
      for await (const piece of responses) {
        if (piece.kind.case === "description") {
          const d = piece.kind.value;
          described = { engine: d.engine, model: d.model, contentType: d.contentType };
        } else if (piece.kind.case === "prompt") {
          total += piece.kind.value.byteLength;
          if (total > options.maxPromptBytes) {
            throw new ConnectError(
              `backend ${backend.id} made a clone prompt over ${options.maxPromptBytes} bytes ` +
                "(max prompt bytes: VOXGATE_MAX_PROMPT_BYTES)",
              Code.ResourceExhausted,
            );
          }
          parts.push(piece.kind.value);
        }
      }
      if (!described || total === 0) {
        throw new ConnectError(
          `backend ${backend.id} answered CreateClonePrompt without ${described ? "prompt bytes" : "a description"}`,
          Code.Internal,
        );
      }
      yield {
        backendId: backend.id,
        engine: described.engine,
        model: described.model,
        contentType: described.contentType || "application/octet-stream",
        bytes: Buffer.concat(parts, total),
      } satisfies MadeClonePrompt;
    },
  );
  // Read to the end (not return at the first item) so the registry records the call as a success.
  let made: MadeClonePrompt | undefined;
  for await (const result of results) made ??= result;
  if (!made) throw new ConnectError("no backend made a clone prompt", Code.Internal);
  return made;
}

async function* upload(
  order: ClonePromptOrder,
): AsyncGenerator<MessageInitShape<typeof CreateClonePromptRequestSchema>> {
  yield {
    kind: {
      case: "spec",
      value: {
        engine: order.engine,
        model: order.model,
        referenceText: order.referenceText,
        contentType: order.contentType,
        language: order.language,
      },
    },
  };
  const audio = order.referenceAudio;
  for (let offset = 0; offset < audio.byteLength; offset += UPLOAD_CHUNK_BYTES) {
    yield {
      kind: { case: "referenceAudio", value: audio.subarray(offset, offset + UPLOAD_CHUNK_BYTES) },
    };
  }
}
