import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Voice,
  VoiceSchema,
  type VoiceService,
  VoiceType,
} from "../../gen/voxgate/v1/voice_pb.js";
import { decodePageToken, encodePageToken, pageSizeOf } from "../paging/page-token.js";
import type { BackendRegistry } from "../registry/index.js";

/** Options of {@link createVoiceHandler}. */
export interface VoiceHandlerOptions {
  /** Registry whose backends' engine presets are listed. */
  registry: BackendRegistry;
}

/**
 * Creates the VoiceService implementation. It lists the preset voices of every connected engine;
 * cloned voices, analysis and deletion arrive with the prompt store and answer UNIMPLEMENTED.
 */
export function createVoiceHandler(options: VoiceHandlerOptions): ServiceImpl<typeof VoiceService> {
  const presets = (): Voice[] => {
    const seen = new Map<string, Voice>();
    for (const backend of options.registry.list()) {
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

  const notYet = (what: string) =>
    new ConnectError(
      `${what} arrives with the prompt store; this gateway lists presets only`,
      Code.Unimplemented,
    );

  return {
    listVoices(request) {
      const offset = decodePageToken(request.pageToken);
      const size = pageSizeOf(request.pageSize);
      const matching = presets().filter(
        (voice) =>
          (request.type === VoiceType.UNSPECIFIED || voice.type === request.type) &&
          (!request.engine || voice.engine === request.engine) &&
          (!request.language ||
            voice.languages.some((l) =>
              l.toLowerCase().startsWith(request.language.toLowerCase()),
            )),
      );
      const page = matching.slice(offset, offset + size);
      const next = offset + page.length;
      return { voices: page, nextPageToken: next < matching.length ? encodePageToken(next) : "" };
    },
    getVoice(request) {
      const voice = presets().find((v) => v.id === request.voiceId);
      if (!voice) {
        throw new ConnectError(
          `voice "${request.voiceId}" is not offered by any connected engine`,
          Code.NotFound,
        );
      }
      return { voice };
    },
    createVoice() {
      throw notYet("voice cloning");
    },
    deleteVoice() {
      throw notYet("deleting cloned voices");
    },
    analyzeVoice() {
      throw notYet("voice analysis");
    },
    analyzeAudio() {
      throw notYet("audio analysis");
    },
  };
}
