/**
 * Voice cloning for the CPU engine: a clone prompt is the pitch and speaking rate measured on the
 * reference audio, and speaking with it sets eSpeak NG's pitch (`-p`), pitch range (`-P`), speed
 * (`-s`) and voice variant so that the output lands on the measured values.
 *
 * The mapping tables were measured with voxgate's own analyzer (`services/analysis`) on eSpeak NG
 * 1.52 (npm espeak-ng 1.0.2) output for three English sentences, so they invert exactly the
 * measurement the prompt was made with.
 */
import { z } from "zod";
import type { VoiceProfile } from "../../analysis/audio-analysis.js";

/** Value of `format` in every prompt this module writes; another value is refused. */
export const ESPEAK_CLONE_FORMAT = "voxgate.espeak-clone/1";

/** MIME type of the prompt bytes. */
export const ESPEAK_CLONE_CONTENT_TYPE = "application/json";

/** Largest prompt accepted, in bytes; real prompts are about 250 bytes. */
export const MAX_ESPEAK_CLONE_PROMPT_BYTES = 4096;

/**
 * An eSpeak clone prompt (JSON, {@link ESPEAK_CLONE_FORMAT}): what was measured on the reference.
 */
export interface EspeakClonePrompt {
  format: typeof ESPEAK_CLONE_FORMAT;
  /** Median f0 of the voiced reference frames, Hz. */
  f0MedianHz: number;
  /** 10th and 90th percentiles of f0, Hz. */
  f0RangeHz: [number, number];
  /**
   * Articulation rate as words per minute (syllables per second of sound x 60 / 1.5); 0 when no
   * syllable was found (a sustained tone), which means "espeak-ng's default rate".
   */
  wordsPerMinute: number;
  /** Syllable nuclei per second of sound, as measured. */
  syllablesPerSecond: number;
  /** eSpeak NG voice (language) to speak with, e.g. `en-us`. */
  baseVoice: string;
  /** Share of reference frames with a pitch, 0..1 (informational). */
  voicedRatio: number;
  /** Length of the reference, ms (informational). */
  referenceDurationMs: number;
}

/** eSpeak NG arguments that realize a clone prompt. */
export interface EspeakCloneParameters {
  /** `-v` value: the base voice, plus `+f3` for voices above {@link FEMALE_VARIANT_FROM_HZ}. */
  voice: string;
  /** `-p`, 0..99. */
  pitch: number;
  /** `-P`, 0..99. */
  pitchRange: number;
  /** `-s`, 80..450. */
  wordsPerMinute: number;
}

/** Median f0 from which the female variant `+f3` is used (the male/female boundary in f0). */
export const FEMALE_VARIANT_FROM_HZ = 165;

// Median f0 (Hz) of espeak-ng output per `-p` at `-P 50`: the default voice and variant +f3.
const PITCH_TABLE_DEFAULT: Array<[number, number]> = [
  [0, 73.5],
  [10, 75.7],
  [20, 79.4],
  [30, 85.4],
  [40, 92.9],
  [50, 102.0],
  [60, 113.1],
  [70, 125.0],
  [80, 140.0],
  [90, 155.8],
  [99, 172.1],
];
const PITCH_TABLE_FEMALE: Array<[number, number]> = [
  [0, 147.7],
  [10, 158.1],
  [20, 168.7],
  [30, 182.0],
  [40, 195.8],
  [50, 213.5],
  [60, 233.0],
  [70, 254.9],
  [80, 280.2],
  [90, 309.0],
  [99, 338.0],
];
// Per `-P`: p10-p90 spread of f0 in semitones, and how much `-P` also moves the median (x).
const RANGE_TABLE: Array<[pitchRange: number, spreadSemitones: number, medianFactor: number]> = [
  [0, 0.43, 0.875],
  [25, 2.19, 0.936],
  [50, 3.9, 1],
  [75, 5.21, 1.07],
  [99, 5.92, 1.135],
];
// Syllables per second of sound measured per `-s`; above 350 espeak-ng stops getting faster.
const SPEED_TABLE: Array<[number, number]> = [
  [80, 2.7],
  [100, 3.27],
  [130, 3.92],
  [175, 5.01],
  [220, 5.65],
  [280, 6.7],
  [350, 8.2],
];
const DEFAULT_WORDS_PER_MINUTE = 175;

const promptSchema = z
  .object({
    format: z.literal(ESPEAK_CLONE_FORMAT),
    f0MedianHz: z.number().min(40).max(1000),
    f0RangeHz: z.tuple([z.number().min(20).max(2000), z.number().min(20).max(2000)]),
    wordsPerMinute: z.number().min(0).max(2000),
    syllablesPerSecond: z.number().min(0).max(40),
    baseVoice: z
      .string()
      .max(64)
      .regex(/^[A-Za-z0-9_-]+$/),
    voicedRatio: z.number().min(0).max(1),
    referenceDurationMs: z.number().min(0),
  })
  .strict()
  .refine((p) => p.f0RangeHz[0] <= p.f0RangeHz[1], "f0RangeHz must be [low, high]");

/** Builds the prompt for a measured voice; `undefined` if the reference has no voiced frame. */
export function createEspeakClonePrompt(
  profile: VoiceProfile,
  baseVoice: string,
): EspeakClonePrompt | undefined {
  const { medianF0Hz, f0RangeHz } = profile.pitch;
  if (medianF0Hz === undefined || f0RangeHz === undefined) {
    return undefined;
  }
  const round = (value: number, digits = 2): number => Number(value.toFixed(digits));
  return {
    format: ESPEAK_CLONE_FORMAT,
    f0MedianHz: round(medianF0Hz),
    f0RangeHz: [round(f0RangeHz[0]), round(f0RangeHz[1])],
    wordsPerMinute: round(profile.speakingRate.wordsPerMinute, 1),
    syllablesPerSecond: round(profile.speakingRate.syllablesPerSecond, 3),
    baseVoice,
    voicedRatio: round(profile.pitch.voicedRatio, 3),
    referenceDurationMs: Math.round(profile.durationMs),
  };
}

/** Serializes a prompt to its bytes (UTF-8 JSON). */
export function encodeEspeakClonePrompt(prompt: EspeakClonePrompt): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(prompt));
}

/**
 * Parses and validates prompt bytes. Returns the prompt, or a sentence saying why the bytes are
 * not a valid {@link ESPEAK_CLONE_FORMAT} prompt (the engine turns it into `EngineInputError`).
 */
export function parseEspeakClonePrompt(bytes: Uint8Array): EspeakClonePrompt | string {
  if (bytes.length > MAX_ESPEAK_CLONE_PROMPT_BYTES) {
    return `the prompt is ${bytes.length} bytes; ${ESPEAK_CLONE_FORMAT} prompts are at most ${MAX_ESPEAK_CLONE_PROMPT_BYTES}`;
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return `the prompt is not ${ESPEAK_CLONE_FORMAT} JSON (made by another engine or model?)`;
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (format !== ESPEAK_CLONE_FORMAT) {
    return `the prompt's format is ${JSON.stringify(format ?? null)?.slice(0, 80)}, expected ${ESPEAK_CLONE_FORMAT}`;
  }
  const parsed = promptSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `invalid ${ESPEAK_CLONE_FORMAT} prompt: ${issue?.path.join(".") || "prompt"}: ${issue?.message}`;
  }
  return parsed.data as EspeakClonePrompt;
}

/**
 * Chooses the eSpeak NG arguments that reproduce a prompt's pitch and rate: the female variant
 * `+f3` from 165 Hz, `-P` from the semitone spread of f0, `-p` so that the median (corrected for
 * what `-P` does to it) matches, and `-s` so that the syllable rate matches, times `speed`.
 * Values beyond what eSpeak NG can do are clamped (-p 0..99, -s 80..450); a prompt without a
 * syllable rate keeps 175 wpm.
 */
export function espeakCloneParameters(
  prompt: EspeakClonePrompt,
  voice: string,
  speed: number,
): EspeakCloneParameters {
  const female = prompt.f0MedianHz >= FEMALE_VARIANT_FROM_HZ;
  const [low, high] = prompt.f0RangeHz;
  const spread = 12 * Math.log2(high / low);
  const pitchRange = clamp(Math.round(interpolate(RANGE_TABLE, spread, 1, 0)), 0, 99);
  const medianFactor = interpolate(RANGE_TABLE, pitchRange, 0, 2);
  const table = female ? PITCH_TABLE_FEMALE : PITCH_TABLE_DEFAULT;
  // Pitch tables are close to exponential, so interpolate in log f0.
  const pitch = clamp(
    Math.round(
      interpolateLog(
        table.map(([p, f0]) => [f0, p]),
        prompt.f0MedianHz / medianFactor,
      ),
    ),
    0,
    99,
  );
  const baseRate =
    prompt.syllablesPerSecond > 0
      ? interpolate(SPEED_TABLE, prompt.syllablesPerSecond, 1, 0)
      : DEFAULT_WORDS_PER_MINUTE;
  return {
    voice: female ? `${voice}+f3` : voice,
    pitch,
    pitchRange,
    wordsPerMinute: clamp(Math.round(baseRate * speed), 80, 450),
  };
}

// Piecewise-linear interpolation in a table sorted by column `from`, extrapolating the end
// segments (callers clamp).
function interpolate(
  table: ReadonlyArray<ReadonlyArray<number>>,
  x: number,
  from: number,
  to: number,
): number {
  const rows = [...table].sort((a, b) => (a[from] as number) - (b[from] as number));
  let i = 0;
  while (i < rows.length - 2 && x > (rows[i + 1]?.[from] as number)) {
    i++;
  }
  const [a, b] = [rows[i] as ReadonlyArray<number>, rows[i + 1] as ReadonlyArray<number>];
  const x0 = a[from] as number;
  const x1 = b[from] as number;
  const t = x1 === x0 ? 0 : (x - x0) / (x1 - x0);
  return (a[to] as number) + t * ((b[to] as number) - (a[to] as number));
}

function interpolateLog(table: Array<[f0: number, value: number]>, f0: number): number {
  return interpolate(
    table.map(([x, y]) => [Math.log(x), y]),
    Math.log(f0),
    0,
    1,
  );
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
