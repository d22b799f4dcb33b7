import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type Voice,
  VoiceSchema,
  type VoiceService,
  VoiceType,
} from "../../gen/voxgate/v1/voice_pb.js";
import { tenantViewOf } from "../auth/tenant-view.js";
import { kCallContext } from "../gateway/call-context.js";
import { pageSizeOf } from "../paging/page-token.js";
import type { BackendRegistry } from "../registry/index.js";
import { createClonePrompt } from "./clone-prompt-call.js";
import { canChangeVoice, canUseVoice } from "./voice-access.js";
import { isClonedVoiceId, isPlausibleVoiceId, newVoiceId } from "./voice-id.js";
import { analysisToJson, clonedVoiceOf } from "./voice-mapping.js";
import { decodeVoicePageToken, encodeVoicePageToken } from "./voice-page-token.js";
import type { VoiceRecord } from "./voice-repository.js";
import { checkCreateVoiceFields, checkUploadSize } from "./voice-request-checks.js";
import type { VoiceAudioTools, VoiceLimits, VoiceStorage } from "./voice-storage.js";

/** Options of {@link createVoiceHandler}. */
export interface VoiceHandlerOptions {
  /** Registry whose backends' engine presets are listed and which clones voices. */
  registry: BackendRegistry;
  /** Cloned voices, their prompts and reference recordings. */
  storage: VoiceStorage;
  /** Audio checks and measurements on the gateway. */
  audio: VoiceAudioTools;
  /** Upload and prompt limits. */
  limits: VoiceLimits;
  /** Deadline of calls whose client set none, in ms (CreateVoice waits for a backend). */
  defaultTimeoutMs: number;
}

/**
 * Creates the VoiceService implementation: engine presets (from the registry) and cloned voices
 * (from SQL) in one catalog.
 *
 * CreateVoice checks the upload size before anything else, then the audio's type and duration,
 * has a backend with clone_prompt_create make the prompt, stores the prompt and the reference
 * recording (both content-addressed), and only then writes the voice row: a failure leaves no
 * voice behind, at most blobs no voice points at, which are harmless (the next upload of the same
 * bytes reuses them). A `request_id` seen before from the same tenant returns the first voice.
 *
 * Cloned voices belong to the caller's tenant: another tenant's voice answers NOT_FOUND exactly as
 * a missing one does (no existence oracle), unless it is shared, which makes it listable, readable
 * and speakable (never changeable) by all. Admin tokens see and change every tenant's voices.
 */
export function createVoiceHandler(options: VoiceHandlerOptions): ServiceImpl<typeof VoiceService> {
  const { registry, storage, audio, limits } = options;

  const presets = (): Voice[] => {
    const seen = new Map<string, Voice>();
    for (const backend of registry.list()) {
      for (const engine of backend.capabilities.engines) {
        for (const preset of engine.voices) {
          const key = `${engine.id}\u0000${preset.id}`;
          if (seen.has(key)) continue;
          seen.set(
            key,
            create(VoiceSchema, {
              id: preset.id,
              name: preset.name,
              type: VoiceType.PRESET,
              engine: engine.id,
              ...(engine.model ? { model: engine.model } : {}),
              languages: preset.languages,
              gender: preset.gender,
            }),
          );
        }
      }
    }
    return [...seen.values()].sort(
      (a, b) => a.engine.localeCompare(b.engine) || a.id.localeCompare(b.id),
    );
  };
  const presetKey = (voice: Voice) => `${voice.engine}\u0000${voice.id}`;

  /** Refuses ids that can name no voice before any lookup touches storage. */
  const checkId = (id: string) => {
    if (!id) throw new ConnectError("voice_id is required", Code.InvalidArgument);
    if (!isPlausibleVoiceId(id)) {
      throw new ConnectError(
        `voice_id "${id.slice(0, 80)}" is not a voice id (letters, digits and ._:/+- only)`,
        Code.InvalidArgument,
      );
    }
  };

  const notFound = (id: string) =>
    new ConnectError(
      `voice "${id}" is neither a cloned voice nor offered by any connected engine`,
      Code.NotFound,
    );

  const callerOf = (context: HandlerContext) => {
    const call = context.values.get(kCallContext);
    const viewer = tenantViewOf(call?.principal);
    return { owner: viewer.tenant, viewer, requestId: call?.requestId ?? "", log: call?.log };
  };

  /** The cloned voice `id` if the caller may use it (`change`: may change it), else NOT_FOUND. */
  const clonedOrThrow = async (id: string, context: HandlerContext, change: boolean) => {
    const record = isClonedVoiceId(id) ? await storage.repository.get(id) : undefined;
    const { viewer } = callerOf(context);
    const allowed =
      record && (change ? canChangeVoice(record, viewer) : canUseVoice(record, viewer));
    if (!record || !allowed) throw notFound(id);
    return record;
  };

  /** The public view of `record` for the caller: the owner only for its tenant and admin. */
  const viewOf = (record: VoiceRecord, context: HandlerContext) =>
    clonedVoiceOf(record, canChangeVoice(record, callerOf(context).viewer));

  return {
    async listVoices(request, context) {
      const size = pageSizeOf(request.pageSize);
      const after = decodeVoicePageToken(request.pageToken);
      const language = request.language.toLowerCase();
      // Fetch one more than a page to know whether another page follows.
      const page: Array<{ voice: Voice; stage: "p" | "c"; key: string }> = [];
      if (request.type !== VoiceType.CLONED && after.stage === "p") {
        for (const voice of presets()) {
          if (page.length > size) break;
          const key = presetKey(voice);
          if (after.key && key <= after.key) continue;
          if (request.engine && voice.engine !== request.engine) continue;
          if (language && !voice.languages.some((l) => l.toLowerCase().startsWith(language))) {
            continue;
          }
          page.push({ voice, stage: "p", key });
        }
      }
      if (request.type !== VoiceType.PRESET && page.length <= size) {
        const records = await storage.repository.list(
          { engine: request.engine, language },
          after.stage === "c" ? after.key : "",
          size + 1 - page.length,
          callerOf(context).viewer,
        );
        for (const record of records) {
          page.push({ voice: viewOf(record, context), stage: "c", key: record.id });
        }
      }
      const last = page.length > size ? page[size - 1] : undefined;
      return {
        voices: page.slice(0, size).map((p) => p.voice),
        nextPageToken: last ? encodeVoicePageToken({ stage: last.stage, key: last.key }) : "",
      };
    },

    async getVoice(request, context) {
      checkId(request.voiceId);
      if (isClonedVoiceId(request.voiceId)) {
        return { voice: viewOf(await clonedOrThrow(request.voiceId, context, false), context) };
      }
      const voice = presets().find((v) => v.id === request.voiceId);
      if (!voice) throw notFound(request.voiceId);
      return { voice };
    },

    async createVoice(request, context) {
      // The cap comes first: nothing else is looked at for an oversized upload.
      checkUploadSize(
        "reference_audio",
        request.referenceAudio.byteLength,
        limits.maxReferenceBytes,
      );
      checkCreateVoiceFields(request);
      const caller = callerOf(context);
      if (request.requestId) {
        const earlier = await storage.repository.findByRequest(caller.owner, request.requestId);
        if (earlier) return { voice: viewOf(earlier, context) };
      }
      const inspected = await audio.inspect(request.referenceAudio, "");
      if (inspected.durationMs > limits.maxReferenceSeconds * 1000) {
        throw new ConnectError(
          `reference_audio lasts ${Math.round(inspected.durationMs / 1000)} s; the limit is ` +
            `${limits.maxReferenceSeconds} s (max reference seconds: VOXGATE_MAX_REFERENCE_SECONDS)`,
          Code.InvalidArgument,
        );
      }
      const made = await createClonePrompt(
        registry,
        {
          referenceAudio: request.referenceAudio,
          contentType: inspected.contentType,
          referenceText: request.referenceText,
          language: request.language,
          engine: request.engine,
          model: { family: request.model?.family ?? "", size: request.model?.size ?? "" },
        },
        {
          signal: context.signal,
          timeoutMs: context.timeoutMs() ?? options.defaultTimeoutMs,
          requestId: caller.requestId,
          maxPromptBytes: limits.maxPromptBytes,
        },
      );
      const model = { family: made.model?.family ?? "", size: made.model?.size ?? "" };
      const prompt = await storage.prompts.put(
        made.bytes,
        {
          name: request.name,
          engine: made.engine,
          model,
          referenceText: request.referenceText,
          contentType: made.contentType,
        },
        context.signal,
      );
      const referenceDigest = await storage.references.put(
        request.referenceAudio,
        inspected.contentType,
      );
      const record = await storage.repository.insert({
        id: newVoiceId(),
        name: request.name,
        engine: made.engine,
        modelFamily: model.family,
        modelSize: model.size,
        language: request.language,
        description: request.description,
        labels: { ...request.labels },
        promptDigest: prompt.digest,
        promptSizeBytes: prompt.sizeBytes,
        referenceDigest,
        referenceContentType: inspected.contentType,
        referenceText: request.referenceText,
        analysis: undefined,
        owner: caller.owner,
        shared: request.shared,
        requestId: request.requestId || undefined,
        createdAt: new Date(),
      });
      caller.log?.info(
        {
          voice: record.id,
          backend: made.backendId,
          prompt: prompt.digest,
          bytes: prompt.sizeBytes,
          tenant: record.owner,
        },
        "voice cloned",
      );
      return { voice: viewOf(record, context) };
    },

    async updateVoice(request, context) {
      checkId(request.voiceId);
      if (!isClonedVoiceId(request.voiceId)) {
        if (presets().some((v) => v.id === request.voiceId)) {
          throw new ConnectError(
            `voice "${request.voiceId}" is an engine preset; only cloned voices can be updated`,
            Code.FailedPrecondition,
          );
        }
        throw notFound(request.voiceId);
      }
      let record = await clonedOrThrow(request.voiceId, context, true);
      if (request.shared !== undefined && request.shared !== record.shared) {
        record = (await storage.repository.setShared(record.id, request.shared)) ?? record;
        callerOf(context).log?.info(
          { voice: record.id, shared: record.shared },
          "voice sharing changed",
        );
      }
      return { voice: viewOf(record, context) };
    },

    async deleteVoice(request, context) {
      checkId(request.voiceId);
      if (!isClonedVoiceId(request.voiceId)) {
        if (presets().some((v) => v.id === request.voiceId)) {
          throw new ConnectError(
            `voice "${request.voiceId}" is an engine preset; only cloned voices can be deleted`,
            Code.FailedPrecondition,
          );
        }
        throw notFound(request.voiceId);
      }
      await clonedOrThrow(request.voiceId, context, true);
      const deleted = await storage.repository.delete(request.voiceId);
      if (!deleted) throw notFound(request.voiceId);
      // The row is gone first, so no voice ever points at a deleted prompt.
      if (!deleted.promptInUse) await storage.prompts.delete(deleted.record.promptDigest);
      if (!deleted.referenceInUse) await storage.references.delete(deleted.record.referenceDigest);
      callerOf(context).log?.info({ voice: request.voiceId }, "voice deleted");
      return {};
    },

    async analyzeVoice(request, context) {
      checkId(request.voiceId);
      if (!isClonedVoiceId(request.voiceId)) {
        if (presets().some((v) => v.id === request.voiceId)) {
          throw new ConnectError(
            `voice "${request.voiceId}" is an engine preset; it has no reference audio to analyze`,
            Code.FailedPrecondition,
          );
        }
        throw notFound(request.voiceId);
      }
      // An analysis is recorded on the voice: a change, so the owner's tenant (or admin) only.
      const record = await clonedOrThrow(request.voiceId, context, true);
      const reference = await storage.references.get(record.referenceDigest, context.signal);
      const analysis = await audio.analyze(
        reference,
        record.referenceContentType,
        request.kinds,
        context.signal,
      );
      const updated = await storage.repository.setAnalysis(record.id, analysisToJson(analysis));
      if (!updated) throw notFound(request.voiceId);
      return { voice: viewOf(updated, context) };
    },

    async analyzeAudio(request, context) {
      const body = request.audio;
      checkUploadSize("audio", body?.data.byteLength ?? 0, limits.maxReferenceBytes);
      const data = body?.data ?? new Uint8Array();
      const inspected = await audio.inspect(data, body?.contentType ?? "");
      if (inspected.durationMs > limits.maxReferenceSeconds * 1000) {
        throw new ConnectError(
          `audio lasts ${Math.round(inspected.durationMs / 1000)} s; the limit is ` +
            `${limits.maxReferenceSeconds} s (max reference seconds: VOXGATE_MAX_REFERENCE_SECONDS)`,
          Code.InvalidArgument,
        );
      }
      return {
        analysis: await audio.analyze(data, inspected.contentType, request.kinds, context.signal),
      };
    },
  };
}
