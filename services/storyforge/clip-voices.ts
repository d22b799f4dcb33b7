import { createHash } from "node:crypto";
import type { CallOptions, Client } from "@connectrpc/connect";
import type { VoiceService } from "../../gen/voxgate/v1/voice_pb.js";
import type { MediaFetcher } from "./media-fetcher.js";
import { StoryForgeError } from "./storyforge-http.js";

/** Turns StoryForge voice refs into voxgate voice ids. */
export interface ClipVoices {
  /**
   * The voice id for Cloud's `voice`/`voice_ref`: a clip URL (xtts, styletts2) is read by the
   * gateway and cloned once per clip and engine (CreateVoice's request id is the clip's sha256, so
   * a repeat returns the first voice); anything else is a voice id (preset or cloned) as it is.
   */
  resolve(voiceRef: string, engine: string, name: string, call: CallOptions): Promise<string>;
}

/** Creates the resolver over VoiceService (in process) and the media fetcher. */
export function createClipVoices(
  voices: Client<typeof VoiceService>,
  media: MediaFetcher,
): ClipVoices {
  return {
    async resolve(voiceRef, engine, name, call) {
      if (!isUrlLike(voiceRef)) return voiceRef;
      const clip = await media.fetch(voiceRef, call.signal);
      const digest = createHash("sha256").update(clip.bytes).digest("hex");
      const created = await voices.createVoice(
        {
          name: name || `storyforge clip ${digest.slice(0, 12)}`,
          referenceAudio: clip.bytes,
          engine,
          labels: { "storyforge.clip_sha256": digest },
          requestId: `sf-clip-${engine || "any"}-${digest}`.slice(0, 128),
        },
        call,
      );
      if (!created.voice) throw new StoryForgeError("internal", "CreateVoice returned no voice");
      return created.voice.id;
    },
  };
}

/** Whether Cloud's `voice` is a URL (anything with a scheme voxgate could be asked to read). */
export function isUrlLike(value: string): boolean {
  return /^(https?|file|data|ftp|ftps|gopher|blob|wss?|s3|gs):/i.test(value);
}
