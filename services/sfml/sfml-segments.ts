import type { SfmlDelivery, SfmlScript } from "./sfml-types.js";

/** Who speaks for a cast name: a voxgate voice (preset or cloned id) and optionally its engine. */
export interface SfmlCastVoice {
  /** Voice id to speak with. */
  voice: string;
  /** Engine to route to; "" = any. */
  engine: string;
}

/** One render segment made from a script (the fields of `voxgate.v1.RenderSegment`). */
export interface SfmlSegment {
  /** Text; "" for a leading pause. */
  text: string;
  /** Voice id. */
  voice: string;
  /** Engine; "" = any. */
  engine: string;
  /** Style directions: the delivery word, for engines that take instructions. */
  instructions: string;
  /** Engine params: `delivery` when the bullet has one. */
  params: Record<string, string>;
  /** Silence after it, in ms: the pauses that follow it, summed. */
  pauseAfterMs: number;
}

/** Raised when a script names a speaker the cast map lacks. */
export class SfmlCastError extends Error {
  override readonly name = "SfmlCastError";
}

/**
 * Turns a script into render segments, one per bullet in script order (so each bullet keeps its
 * own delivery, and pauses fall between segments): every pause, scene- or speaker-level, becomes
 * silence after the segment before it (pauses in a row add up); pauses before the first bullet
 * become a text-less leading segment. `voices` maps each speaker name to its voice.
 *
 * @throws SfmlCastError naming a speaker without a voice.
 */
export function sfmlToSegments(
  script: SfmlScript,
  voices: Readonly<Record<string, SfmlCastVoice>>,
): SfmlSegment[] {
  const segments: SfmlSegment[] = [];
  let leadingMs = 0;
  const pause = (seconds: number) => {
    const ms = Math.round(seconds * 1000);
    const last = segments.at(-1);
    if (last) last.pauseAfterMs += ms;
    else leadingMs += ms;
  };
  const speak = (name: string, text: string, delivery: SfmlDelivery | undefined) => {
    const voice = voices[name];
    if (!voice) throw new SfmlCastError(`the cast map has no voice for ${name}`);
    if (segments.length === 0 && leadingMs > 0) {
      segments.push({
        text: "",
        voice: "",
        engine: "",
        instructions: "",
        params: {},
        pauseAfterMs: leadingMs,
      });
    }
    segments.push({
      text,
      voice: voice.voice,
      engine: voice.engine,
      instructions: delivery ?? "",
      params: delivery ? { delivery } : {},
      pauseAfterMs: 0,
    });
  };
  for (const scene of script.scenes) {
    for (const item of scene.items) {
      if (item.kind === "pause") {
        pause(item.seconds);
        continue;
      }
      for (const entry of item.items) {
        if (entry.kind === "pause") pause(entry.seconds);
        else speak(item.name, entry.text, entry.delivery);
      }
    }
  }
  return segments;
}

/** The total of all pauses of a script, in ms (each rounded as {@link sfmlToSegments} does). */
export function sfmlPauseMs(script: SfmlScript): number {
  let total = 0;
  for (const scene of script.scenes) {
    for (const item of scene.items) {
      if (item.kind === "pause") total += Math.round(item.seconds * 1000);
      else
        for (const entry of item.items)
          if (entry.kind === "pause") total += Math.round(entry.seconds * 1000);
    }
  }
  return total;
}
