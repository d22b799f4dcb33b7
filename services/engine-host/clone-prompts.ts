import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type {
  ClonePromptRef,
  CreateClonePromptRequest,
  CreateClonePromptResponseSchema,
} from "../../gen/voxgate/v1/gpu_backend_pb.js";
import type { EngineClonePrompt, TtsEngine } from "../engines/tts-engine.js";
import { kClonePromptSource } from "./clone-prompt-source.js";
import { toEngineRpcError } from "./engine-error-codes.js";

const DIGEST = /^[0-9a-f]{64}$/;

/** Options of {@link createClonePrompts}. */
export interface ClonePromptsOptions {
  /** Picks a hosted engine by id (empty: the default); throws NOT_FOUND for unknown ids. */
  pickEngine(id: string): TtsEngine;
  /** Engines hosted, to find the default clone engine. */
  engines: readonly TtsEngine[];
  /** Largest reference audio accepted, in bytes (`VOXGATE_AGENT_MAX_REFERENCE_BYTES`). */
  maxReferenceBytes: number;
  /** Largest prompt message sent back, in bytes. */
  maxChunkBytes: number;
  /** Takes a slot; throws when none is free or the host drains. */
  enter(): void;
  /** Gives the slot back. */
  leave(): void;
}

/** The engine host's cloning calls: making clone prompts and fetching them for synthesis. */
export interface ClonePrompts {
  /** GPUBackendService.CreateClonePrompt: spec, then reference audio in; description, then prompt out. */
  create(
    requests: AsyncIterable<CreateClonePromptRequest>,
    context: HandlerContext,
  ): AsyncIterable<MessageInitShape<typeof CreateClonePromptResponseSchema>>;
  /**
   * Checks that `engine` can speak with `ref` (cloning support, same model family and size) and
   * throws FAILED_PRECONDITION naming both models when not; cheap, so it runs before a slot is
   * taken.
   */
  check(engine: TtsEngine, ref: ClonePromptRef): void;
  /** Gets the bytes of `ref` from the call's {@link kClonePromptSource} (cache or gateway). */
  resolve(ref: ClonePromptRef, context: HandlerContext): Promise<EngineClonePrompt>;
}

/** Creates the cloning half of the engine host. */
export function createClonePrompts(options: ClonePromptsOptions): ClonePrompts {
  const { maxReferenceBytes, maxChunkBytes } = options;

  const cloneEngine = (id: string): TtsEngine => {
    if (!id) {
      const engine = options.engines.find((e) => e.info.supportsCloning && e.createClonePrompt);
      if (!engine) {
        const hosted = options.engines.map((e) => e.info.id).join(", ");
        throw new ConnectError(
          `no hosted engine makes clone prompts (hosted: ${hosted})`,
          Code.Unimplemented,
        );
      }
      return engine;
    }
    const engine = options.pickEngine(id);
    if (!engine.info.supportsCloning || !engine.createClonePrompt) {
      throw new ConnectError(
        `engine "${engine.info.id}" cannot make clone prompts`,
        Code.Unimplemented,
      );
    }
    return engine;
  };

  const check: ClonePrompts["check"] = (engine, ref) => {
    if (!engine.info.supportsCloning) {
      throw new ConnectError(
        `engine "${engine.info.id}" cannot speak with clone prompts`,
        Code.FailedPrecondition,
      );
    }
    if (!DIGEST.test(ref.digest)) {
      throw new ConnectError(
        "clone_prompt.digest must be a lowercase hex sha256 (64 characters)",
        Code.InvalidArgument,
      );
    }
    const size = Number(ref.sizeBytes);
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new ConnectError("clone_prompt.size_bytes must be above 0", Code.InvalidArgument);
    }
    const family = ref.model?.family ?? "";
    const modelSize = ref.model?.size ?? "";
    if (family !== engine.info.modelFamily || modelSize !== engine.info.modelSize) {
      throw new ConnectError(
        `clone prompt was made by model "${modelName(family, modelSize)}"; engine ` +
          `"${engine.info.id}" runs "${modelName(engine.info.modelFamily, engine.info.modelSize)}"`,
        Code.FailedPrecondition,
      );
    }
  };

  const resolve: ClonePrompts["resolve"] = async (ref, context) => {
    const source = context.values.get(kClonePromptSource);
    if (!source) {
      throw new ConnectError(
        "this engine host has no clone prompt source (prompts reach engines through an agent)",
        Code.FailedPrecondition,
      );
    }
    const bytes = await source.get(
      { digest: ref.digest, sizeBytes: Number(ref.sizeBytes) },
      context.signal,
    );
    return { digest: ref.digest, bytes };
  };

  async function* create(
    requests: AsyncIterable<CreateClonePromptRequest>,
    context: HandlerContext,
  ): AsyncGenerator<MessageInitShape<typeof CreateClonePromptResponseSchema>> {
    const messages = requests[Symbol.asyncIterator]();
    const first = await messages.next();
    if (first.done || first.value.kind.case !== "spec") {
      throw new ConnectError(
        "CreateClonePrompt must start with a spec message",
        Code.InvalidArgument,
      );
    }
    const spec = first.value.kind.value;
    const engine = cloneEngine(spec.engine);
    const { info } = engine;
    const wanted = spec.model;
    if (
      (wanted?.family && wanted.family !== info.modelFamily) ||
      (wanted?.size && wanted.size !== info.modelSize)
    ) {
      throw new ConnectError(
        `spec asks for model "${modelName(wanted.family, wanted.size)}"; engine ` +
          `"${info.id}" runs "${modelName(info.modelFamily, info.modelSize)}"`,
        Code.FailedPrecondition,
      );
    }
    options.enter();
    try {
      const parts: Uint8Array[] = [];
      let total = 0;
      for (let next = await messages.next(); !next.done; next = await messages.next()) {
        if (next.value.kind.case !== "referenceAudio") {
          throw new ConnectError(
            "only reference_audio messages may follow the spec",
            Code.InvalidArgument,
          );
        }
        total += next.value.kind.value.byteLength;
        if (total > maxReferenceBytes) {
          // Refused while the upload still streams: nothing past the limit is buffered.
          throw new ConnectError(
            `reference audio exceeds this agent's limit of ${maxReferenceBytes} bytes ` +
              "(VOXGATE_AGENT_MAX_REFERENCE_BYTES)",
            Code.InvalidArgument,
          );
        }
        parts.push(next.value.kind.value);
      }
      if (total === 0) {
        throw new ConnectError("no reference audio was sent", Code.InvalidArgument);
      }
      const createPrompt = engine.createClonePrompt?.bind(engine);
      if (!createPrompt) throw new ConnectError("unreachable", Code.Internal);
      let result: Awaited<ReturnType<typeof createPrompt>>;
      try {
        result = await createPrompt(
          {
            referenceAudio: parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts),
            contentType: spec.contentType,
            referenceText: spec.referenceText,
            language: spec.language,
          },
          context.signal,
        );
      } catch (err) {
        throw toEngineRpcError(err);
      }
      yield {
        kind: {
          case: "description",
          value: {
            model: { family: info.modelFamily, size: info.modelSize },
            engine: info.id,
            sizeBytes: BigInt(result.prompt.byteLength),
            contentType: result.contentType,
          },
        },
      };
      for (let offset = 0; offset < result.prompt.byteLength; offset += maxChunkBytes) {
        yield {
          kind: { case: "prompt", value: result.prompt.subarray(offset, offset + maxChunkBytes) },
        };
      }
    } finally {
      options.leave();
    }
  }

  return { create, check, resolve };
}

function modelName(family: string, size: string): string {
  return [family || "(none)", size].filter(Boolean).join(" ");
}
