import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ClonePromptRef, ClonePromptRefSchema } from "../../gen/voxgate/v1/gpu_backend_pb.js";
import { checkPromptName } from "../prompt-store/named-prompt-checks.js";
import type { PromptNameRepository } from "../prompt-store/prompt-name-repository.js";
import { canSpeakPrompt, canUseVoice } from "./voice-access.js";
import { isClonedVoiceId, isDigest } from "./voice-id.js";
import type { VoiceRepository, VoiceViewer } from "./voice-repository.js";
import type { VoicePromptStore } from "./voice-storage.js";

/** What a synthesis request names: a voice id and/or a prompt digest. */
export interface CloneSelection {
  /** `SynthesizeSpeechRequest.voice`: a preset id, a cloned voice id, or empty. */
  voice: string;
  /** `SynthesizeSpeechRequest.prompt_id`: a prompt digest, or empty. */
  promptId: string;
  /** `SynthesizeSpeechRequest.prompt_name`: one of the caller's tenant's prompt names, or empty. */
  promptName?: string;
}

/**
 * Finds the clone prompt a synthesis needs, or undefined when it speaks with a preset (or the
 * default). The reference never carries a URL: agents get the bytes over their stream, and
 * serverless backends sign their own short-lived URL. `viewer` is the caller's tenant view: a
 * voice or prompt of another tenant is NOT_FOUND unless shared.
 */
export type ClonePromptResolver = (
  selection: CloneSelection,
  viewer: VoiceViewer,
) => Promise<ClonePromptRef | undefined>;

/** Options of {@link createClonePromptResolver}. */
export interface ClonePromptResolverOptions {
  /** Cloned voices. */
  repository: Pick<VoiceRepository, "get" | "promptAccess">;
  /** Stored prompts. */
  prompts: Pick<VoicePromptStore, "stat">;
  /** Prompt names (per tenant); without them `prompt_name` is refused as unimplemented. */
  names?: Pick<PromptNameRepository, "get">;
}

/**
 * Creates the resolver. Preset ids never touch storage, so a gateway that only speaks presets
 * never opens its database.
 *
 * @throws ConnectError INVALID_ARGUMENT when more than one is set or `prompt_id` is not a sha256 digest;
 *   NOT_FOUND for an unknown cloned voice or prompt.
 */
export function createClonePromptResolver(
  options: ClonePromptResolverOptions,
): ClonePromptResolver {
  return async ({ voice, promptId, promptName = "" }, viewer) => {
    if ([voice, promptId, promptName].filter(Boolean).length > 1) {
      throw new ConnectError(
        "set at most one of voice, prompt_id and prompt_name",
        Code.InvalidArgument,
      );
    }
    if (promptName) {
      if (!options.names) return undefined;
      checkPromptName(promptName);
      // Names belong to the caller's tenant (admins included): another tenant's is NOT_FOUND.
      const named = await options.names.get(viewer.tenant, promptName);
      if (!named) throw new ConnectError(`prompt "${promptName}" does not exist`, Code.NotFound);
      return create(ClonePromptRefSchema, {
        digest: named.digest,
        sizeBytes: BigInt(named.sizeBytes),
        model: { family: named.modelFamily, size: named.modelSize },
      });
    }
    if (promptId) {
      if (!isDigest(promptId)) {
        throw new ConnectError(
          "prompt_id must be a prompt digest: 64 lowercase hex characters (sha256)",
          Code.InvalidArgument,
        );
      }
      // Another tenant's prompt is as absent as a missing one; a shared voice's may be spoken.
      const allowed =
        viewer.all ||
        canSpeakPrompt(await options.repository.promptAccess(promptId, viewer.tenant));
      const prompt = allowed ? await options.prompts.stat(promptId) : undefined;
      if (!prompt) throw new ConnectError(`prompt ${promptId} is not stored`, Code.NotFound);
      return create(ClonePromptRefSchema, {
        digest: prompt.digest,
        sizeBytes: BigInt(prompt.sizeBytes),
        model: prompt.model,
      });
    }
    if (!isClonedVoiceId(voice)) return undefined;
    const found = await options.repository.get(voice);
    const record = found && canUseVoice(found, viewer) ? found : undefined;
    if (!record) throw new ConnectError(`voice "${voice}" does not exist`, Code.NotFound);
    return create(ClonePromptRefSchema, {
      digest: record.promptDigest,
      sizeBytes: BigInt(record.promptSizeBytes),
      model: { family: record.modelFamily, size: record.modelSize },
    });
  };
}
