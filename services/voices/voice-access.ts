import type { PromptAccess, VoiceRecord, VoiceViewer } from "./voice-repository.js";

/** Whether `viewer` may list, read and speak `voice`: its own tenant's, shared, or admin. */
export function canUseVoice(voice: VoiceRecord, viewer: VoiceViewer): boolean {
  return viewer.all || voice.owner === viewer.tenant || voice.shared;
}

/** Whether `viewer` may change or delete `voice`: its own tenant's, or admin. */
export function canChangeVoice(voice: VoiceRecord, viewer: VoiceViewer): boolean {
  return viewer.all || voice.owner === viewer.tenant;
}

/** Whether a tenant with `access` may synthesize with a prompt (owned, or a shared voice's). */
export function canSpeakPrompt(access: PromptAccess): boolean {
  return access.owned || access.shared;
}
