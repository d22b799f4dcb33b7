import { AudioEncoding } from "../../gen/voxgate/v1/audio_pb.js";
import { badRequest } from "./relay-error.js";

/** A JSON object body as relay clients send it. */
export type RelayBody = Readonly<Record<string, unknown>>;

/** An optional string field; `undefined` and `null` are absent. @throws RelayError 400 */
export function optionalString(body: RelayBody, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badRequest(`'${key}' must be a string`);
  return value;
}

/** A required, non-empty string field; the message is the relay's (`Missing 'text'`). */
export function requiredString(body: RelayBody, key: string): string {
  const value = optionalString(body, key);
  if (!value) throw badRequest(`Missing '${key}'`);
  return value;
}

/** An optional list of strings. @throws RelayError 400 */
export function stringList(body: RelayBody, key: string): string[] {
  const value = body[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw badRequest(`'${key}' must be a list of strings`);
  }
  return value as string[];
}

/** Prompt labels the relay keeps as top-level fields of a prompt. */
export const kRelayLabelKeys = [
  "character",
  "emotion",
  "intensity",
  "description",
  "instruct",
  "base_description",
] as const;

/** The relay's label fields of `body` (those set), as prompt labels. */
export function labelsOf(body: RelayBody): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const key of kRelayLabelKeys) {
    const value = optionalString(body, key);
    if (value) labels[key] = value;
  }
  return labels;
}

// Qwen3-TTS takes language names; voxgate takes BCP-47 tags. "Auto" lets the engine decide.
const LANGUAGES: Readonly<Record<string, string>> = {
  auto: "",
  english: "en",
  chinese: "zh",
  japanese: "ja",
  korean: "ko",
  german: "de",
  french: "fr",
  russian: "ru",
  portuguese: "pt",
  spanish: "es",
  italian: "it",
};

/**
 * The BCP-47 tag for a relay `language`: a Qwen3 language name ("English", "Auto") or already a
 * tag ("en-US"). @throws RelayError 400 for anything else.
 */
export function languageTag(language: string | undefined): string {
  if (!language) return "";
  const named = LANGUAGES[language.toLowerCase()];
  if (named !== undefined) return named;
  if (/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(language)) return language;
  throw badRequest(
    `language "${language.slice(0, 40)}" is neither a language name (${Object.keys(LANGUAGES).join(", ")}) nor a BCP-47 tag`,
  );
}

/** The encoding of a relay `format` ("wav", "mp3"; "pcm" too). @throws RelayError 400 */
export function encodingOf(format: string): AudioEncoding {
  switch (format.toLowerCase()) {
    case "wav":
      return AudioEncoding.WAV;
    case "mp3":
      return AudioEncoding.MP3;
    case "pcm":
      return AudioEncoding.PCM;
    default:
      throw badRequest(`format "${format.slice(0, 20)}" is not one of wav, mp3, pcm`);
  }
}
