import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ClonePromptRef, ClonePromptRefSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { isClonedVoiceId, isDigest } from "./voice-id.js";
import type { VoiceRepository } from "./voice-repository.js";
import type { VoicePromptStore } from "./voice-storage.js";

/** What a synthesis request names: a voice id and/or a prompt digest. */
export interface CloneSelection {
  /** `SynthesizeSpeechRequest.voice`: a preset id, a cloned voice id, or empty. */
  voice: string;
  /** `SynthesizeSpeechRequest.prompt_id`: a prompt digest, or empty. */
  promptId: string;
}

/**
 * Finds the clone prompt a synthesis needs, or undefined when it speaks with a preset (or the
 * default). The reference never carries a URL: agents get the bytes over their stream, and
 * serverless backends sign their own short-lived URL.
 */
export type ClonePromptResolver = (
  selection: CloneSelection,
) => Promise<ClonePromptRef | undefined>;

/** Options of {@link createClonePromptResolver}. */
export interface ClonePromptResolverOptions {
  /** Cloned voices. */
  repository: Pick<VoiceRepository, "get">;
  /** Stored prompts. */
  prompts: Pick<VoicePromptStore, "stat">;
}

/**
 * Creates the resolver. Preset ids never touch storage, so a gateway that only speaks presets
 * never opens its database.
 *
 * @throws ConnectError INVALID_ARGUMENT when both are set or `prompt_id` is not a sha256 digest;
 *   NOT_FOUND for an unknown cloned voice or prompt.
 */
export function createClonePromptResolver(
  options: ClonePromptResolverOptions,
): ClonePromptResolver {
  return async ({ voice, promptId }) => {
    if (promptId) {
      if (voice) {
        throw new ConnectError("set voice or prompt_id, not both", Code.InvalidArgument);
      }
      if (!isDigest(promptId)) {
        throw new ConnectError(
          "prompt_id must be a prompt digest: 64 lowercase hex characters (sha256)",
          Code.InvalidArgument,
        );
      }
      const prompt = await options.prompts.stat(promptId);
      if (!prompt) throw new ConnectError(`prompt ${promptId} is not stored`, Code.NotFound);
      return create(ClonePromptRefSchema, {
        digest: prompt.digest,
        sizeBytes: BigInt(prompt.sizeBytes),
        model: prompt.model,
      });
    }
    if (!isClonedVoiceId(voice)) return undefined;
    const record = await options.repository.get(voice);
    if (!record) throw new ConnectError(`voice "${voice}" does not exist`, Code.NotFound);
    return create(ClonePromptRefSchema, {
      digest: record.promptDigest,
      sizeBytes: BigInt(record.promptSizeBytes),
      model: { family: record.modelFamily, size: record.modelSize },
    });
  };
}
